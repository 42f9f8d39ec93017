"""`putt-daemon snapshot`: from the running service if there is one (it owns the camera), else the camera.

Real processes throughout: the service on `sim://`, the command as `python -m daemon`, and for the timeout a
process that ignores SIGUSR1 behind a fresh state file.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from daemon.models import Image
from daemon.outlets.statefile import STATE_FILE, state_json
from daemon.vision.calibration import Region, load_calibration
from tests.conftest import REPO, ServiceProcess, make_state

SIM = "sim://?seed=0&putts=4&realtime=1"
IGNORES_SIGUSR1 = """
import signal, time
signal.signal(signal.SIGUSR1, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(60)
"""
MAT_GREEN = (60, 180, 60)  # the mat's outline colour in daemon.vision.overlay (BGR)


def snapshot(
    env: dict[str, str], cwd: Path, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon", "snapshot", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def picture(path: Path) -> Image:
    image: Image | None = cv2.imread(str(path))
    assert image is not None, path
    return image


@pytest.fixture
def env(cli_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**cli_env, "PUTT_STATE_DIR": str(tmp_path / "state"), "PUTT_CAMERA_SOURCE": SIM}


@pytest.fixture
def service(tmp_path: Path, env: dict[str, str]) -> Iterator[ServiceProcess]:
    run = ServiceProcess(tmp_path, env)
    run.wait_datagram(lambda d: "READY=1" in d, timeout=60)
    yield run
    run.close()


def test_with_no_service_the_command_takes_a_frame_from_the_camera(
    tmp_path: Path, env: dict[str, str]
) -> None:
    plain = snapshot(env, tmp_path, str(tmp_path / "plain.png"))
    drawn = snapshot(env, tmp_path, str(tmp_path / "drawn.png"), "--draw")
    assert plain.returncode == 0, plain.stderr
    assert drawn.returncode == 0, drawn.stderr
    assert "640x480 frame from camera sim://" in plain.stdout
    assert "regions drawn" in drawn.stdout
    assert not (tmp_path / "state" / "snapshot.jpg").exists()  # no service was asked
    before, after = picture(tmp_path / "plain.png"), picture(tmp_path / "drawn.png")
    assert before.shape == after.shape == (480, 640, 3)
    # The simulator's first frame is the same both times: only the drawing differs, on the mat's outline.
    mat = load_calibration(REPO / "config" / "calibration.json").polygons[Region.MAT]
    (x1, y1), (x2, _) = mat[0], mat[1]
    middle_of_top_edge = ((x1 + x2) // 2, y1)
    assert tuple(after[middle_of_top_edge[1], middle_of_top_edge[0]]) == MAT_GREEN
    assert tuple(before[middle_of_top_edge[1], middle_of_top_edge[0]]) != MAT_GREEN
    assert np.count_nonzero(np.any(before != after, axis=2)) > 1000


def test_a_video_file_source_gives_its_first_frame(tmp_path: Path, env: dict[str, str]) -> None:
    video = tmp_path / "rig.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (320, 240))
    for shade in (40, 200, 120):
        writer.write(np.full((240, 320, 3), (shade, 90, 30), np.uint8))
    writer.release()
    result = snapshot({**env, "PUTT_CAMERA_SOURCE": str(video)}, tmp_path, str(tmp_path / "first.png"))
    assert result.returncode == 0, result.stderr
    assert f"320x240 frame from camera {video}" in result.stdout
    image = picture(tmp_path / "first.png")
    assert abs(int(image[120, 160, 0]) - 40) < 8  # the first frame's blue, not a later one's


def test_while_the_service_runs_the_frame_comes_from_it(
    tmp_path: Path, env: dict[str, str], service: ServiceProcess
) -> None:
    out = tmp_path / "from-service.jpg"
    result = snapshot(env, tmp_path, str(out), "--draw")
    assert result.returncode == 0, result.stderr
    assert f"frame from the running service (pid {service.process.pid}), regions drawn" in result.stdout
    service.wait_line(r"snapshot written to .*snapshot\.jpg")
    assert (tmp_path / "state" / "snapshot.jpg").stat().st_mode & 0o777 == 0o640
    assert picture(out).shape == (480, 640, 3)
    again = snapshot(env, tmp_path, str(tmp_path / "again.jpg"))  # a second request replaces the file again
    assert again.returncode == 0, again.stderr
    assert service.process.poll() is None


def test_a_service_that_does_not_answer_is_an_error_after_a_bounded_wait(
    tmp_path: Path, env: dict[str, str]
) -> None:
    deaf = subprocess.Popen(
        [sys.executable, "-c", IGNORES_SIGUSR1],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert deaf.stdout is not None
        assert deaf.stdout.readline().strip() == "ready"
        state = tmp_path / "state"
        state.mkdir()
        (state / STATE_FILE).write_text(state_json(make_state(pid=deaf.pid, camera="lost"), 60.0))
        result = snapshot(env, tmp_path, str(tmp_path / "never.jpg"))
        assert result.returncode == 66
        assert (
            f"the running service (pid {deaf.pid}) sent no frame within 5 s (its camera: lost"
            in result.stderr
        )
        assert "Traceback" not in result.stderr
        assert not (tmp_path / "never.jpg").exists()
    finally:
        deaf.send_signal(signal.SIGTERM)
        deaf.wait(timeout=10)
        if deaf.stdout is not None:
            deaf.stdout.close()


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("nowhere/s.jpg", "does not exist"),
        ("s.txt", "not an image file name"),
        ("folder.jpg", "it is a folder"),
    ],
)
def test_an_output_that_cannot_be_written_is_refused_before_the_camera_opens(
    tmp_path: Path, env: dict[str, str], target: str, message: str
) -> None:
    (tmp_path / "folder.jpg").mkdir()
    result = snapshot({**env, "PUTT_CAMERA_SOURCE": "/dev/video99"}, tmp_path, target)
    assert result.returncode == 73
    assert message in result.stderr


def test_a_missing_camera_is_exit_66(tmp_path: Path, env: dict[str, str]) -> None:
    result = snapshot({**env, "PUTT_CAMERA_SOURCE": "/dev/video99"}, tmp_path, str(tmp_path / "s.jpg"))
    assert result.returncode == 66
    assert "no such camera device: /dev/video99" in result.stderr
    assert "Traceback" not in result.stderr


def test_drawing_a_calibration_that_does_not_fit_the_frame_is_exit_78(
    tmp_path: Path, env: dict[str, str]
) -> None:
    square = json.loads((REPO / "config" / "calibration.json").read_text())
    square["frame_width"] = square["frame_height"] = 960  # a square camera's: cannot be scaled to 640x480
    calibration = tmp_path / "square.json"
    calibration.write_text(json.dumps(square))
    result = snapshot({**env, "PUTT_CALIBRATION_FILE": str(calibration)}, tmp_path, "s.png", "--draw")
    assert result.returncode == 78
    assert "square.json on a 640x480 frame: made for 960x960 frames" in result.stderr
    assert not (tmp_path / "s.png").exists()


def test_a_camera_that_sends_nothing_is_exit_66_after_its_stall_time(
    tmp_path: Path, env: dict[str, str]
) -> None:
    # The simulated camera's first read blocks for an hour, as a USB camera's can in its driver.
    silent = {**env, "PUTT_CAMERA_SOURCE": SIM + "&stall_at=0", "PUTT_CAMERA_STALL_SECONDS": "1"}
    result = snapshot(silent, tmp_path, "s.jpg")
    assert result.returncode == 66
    assert result.stderr.strip().endswith(f"camera {SIM}&stall_at=0 sent no frame for 1 s"), result.stderr
    assert not (tmp_path / "s.jpg").exists()
