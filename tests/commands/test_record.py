"""`putt-daemon record`: the camera to a constant-rate mp4 that `process` reads back, kept whole when stopped.

Real processes throughout: the command as `python -m daemon` on the `sim://` camera in real time, stopped by
SIGTERM and by kill -9, and the running-service refusal behind a fresh state file of a live process.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from daemon.commands.record import frames_to_write
from daemon.models import Frame
from daemon.outlets.statefile import STATE_FILE, state_json
from tests.conftest import make_state

SIM = "sim://?seed=7311&putts=3&realtime=1"


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "daemon", "record", *args]


def record(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(*args), env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def clip_frames(path: Path) -> tuple[int, float, list[np.ndarray]]:
    """Frames counted by reading, the container's frame rate, and the frames."""
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    return len(frames), fps, frames


@pytest.fixture
def env(cli_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**cli_env, "PUTT_STATE_DIR": str(tmp_path / "state"), "PUTT_CAMERA_SOURCE": SIM}


def test_a_recording_lasts_its_seconds_and_process_reads_it(tmp_path: Path, env: dict[str, str]) -> None:
    out = tmp_path / "putts.mp4"
    done = record(env, tmp_path, str(out), "--seconds", "2")
    assert done.returncode == 0, done.stderr
    count, fps, frames = clip_frames(out)
    assert fps == 30
    assert 55 <= count <= 63  # two seconds at 30 fps, give or take the frame in flight at each end
    assert frames[0].shape == (480, 640, 3)
    assert f"{out}: {count} frames of 640x480" in done.stdout
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    processed = subprocess.run(
        [sys.executable, "-m", "daemon", "process", str(out), "--out", str(tmp_path / "reports")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert processed.returncode == 0, processed.stderr
    assert f"{count} frames" in processed.stdout


def test_late_frames_are_repeated_and_early_ones_dropped_to_keep_the_clock() -> None:
    image = np.zeros((4, 4, 3), np.uint8)

    def at(t: float) -> Frame:
        return Frame(0, t, image)

    assert frames_to_write(at(10.0), 10.0, 0, 30) == 1  # the first frame
    assert frames_to_write(at(10.0 + 1 / 30), 10.0, 1, 30) == 1  # on time
    assert frames_to_write(at(10.0 + 4 / 30), 10.0, 2, 30) == 3  # two frames late: the gap is filled
    assert frames_to_write(at(10.0 + 4.2 / 30), 10.0, 5, 30) == 0  # early: its slot is taken
    assert frames_to_write(at(10.0 + 5 / 30), 10.0, 5, 30) == 1


def test_sigterm_ends_the_recording_and_keeps_the_clip(tmp_path: Path, env: dict[str, str]) -> None:
    out = tmp_path / "stopped.mp4"
    started = time.monotonic()
    process = subprocess.Popen(command(str(out), "--seconds", "600"), env=env, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    tmp = tmp_path / ".stopped.mp4.tmp"
    while not (tmp.exists() and tmp.stat().st_size > 10_000) and time.monotonic() - started < 60:
        time.sleep(0.1)
    assert not out.exists()  # still recording: the clip appears only when whole
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    count, _, _ = clip_frames(out)
    assert count > 10
    assert f"{out}: {count} frames" in stdout
    assert not tmp.exists()


def test_a_camera_that_stops_sending_ends_the_recording_and_keeps_the_clip(
    tmp_path: Path, env: dict[str, str]
) -> None:
    # The simulated camera's read blocks for an hour after 1 s, as a USB camera's can in its driver.
    stalling = {**env, "PUTT_CAMERA_SOURCE": SIM + "&stall_at=1", "PUTT_CAMERA_STALL_SECONDS": "1"}
    out = tmp_path / "stalled.mp4"
    done = record(stalling, tmp_path, str(out), "--seconds", "600")
    assert done.returncode == 0, done.stderr
    assert "camera sim://?seed=7311&putts=3&realtime=1&stall_at=1 sent no frame for 1 s; recording stops" in (
        done.stdout
    )
    count, _, _ = clip_frames(out)
    assert 25 <= count <= 35  # the second before the stall
    assert f"{out}: {count} frames" in done.stdout
    assert not (tmp_path / ".stalled.mp4.tmp").exists()


def test_a_camera_that_sends_nothing_is_exit_66_and_writes_nothing(
    tmp_path: Path, env: dict[str, str]
) -> None:
    silent = {**env, "PUTT_CAMERA_SOURCE": SIM + "&stall_at=0", "PUTT_CAMERA_STALL_SECONDS": "1"}
    done = record(silent, tmp_path, str(tmp_path / "none.mp4"), "--seconds", "600")
    assert done.returncode == 66
    assert done.stderr.strip().endswith("sent no frame for 1 s"), done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.glob("*.mp4*")) == []


def test_kill_9_leaves_no_torn_clip_under_the_name(tmp_path: Path, env: dict[str, str]) -> None:
    out = tmp_path / "killed.mp4"
    process = subprocess.Popen(command(str(out), "--seconds", "600"), env=env, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    tmp = tmp_path / ".killed.mp4.tmp"
    deadline = time.monotonic() + 60
    while not (tmp.exists() and tmp.stat().st_size > 10_000) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert tmp.exists()
    process.kill()
    process.wait(timeout=10)
    assert not out.exists()


def test_while_the_service_runs_it_is_refused(tmp_path: Path, env: dict[str, str]) -> None:
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        state = tmp_path / "state"
        state.mkdir()
        (state / STATE_FILE).write_text(state_json(make_state(pid=live.pid), 60.0))
        done = record(env, tmp_path, str(tmp_path / "never.mp4"))
        assert done.returncode == 66
        assert f"the running service (pid {live.pid}) owns the camera: stop it" in done.stderr
        assert "Traceback" not in done.stderr
        assert not list(tmp_path.glob("*.mp4"))
    finally:
        live.kill()
        live.wait(timeout=10)


@pytest.mark.parametrize(
    ("case", "code", "message"),
    [
        (("clip.avi", SIM), 73, "the clip is an mp4 (name it .mp4)"),
        (("nowhere/clip.mp4", SIM), 73, "folder nowhere does not exist"),
        (("clip.mp4", "/dev/video99"), 66, "no such camera device: /dev/video99"),
    ],
)
def test_bad_targets_and_cameras_are_refused_in_one_line(
    tmp_path: Path, env: dict[str, str], case: tuple[str, str], code: int, message: str
) -> None:
    target, source = case
    done = record({**env, "PUTT_CAMERA_SOURCE": source}, tmp_path, target)
    assert done.returncode == code
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.rglob("*.mp4*"))
