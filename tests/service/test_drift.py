"""Calibration drift in the service: `process` and `run` follow a moved camera, and report a calibration that
does not belong to the scene instead of counting silently with it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from daemon.models import Image
from daemon.sim.clip import ClipSpec, write_clip
from daemon.sim.render import Renderer
from daemon.sim.rig import make_scene
from daemon.sim.script import PuttRequest
from daemon.vision.calibration import Calibration, load_calibration
from daemon.vision.drift import Matrix, transform_calibration, write_reference
from tests.conftest import REPO, ServiceProcess, service_state, wait_until

REQUESTS = (PuttRequest("MAKE"), PuttRequest("CATCH"), PuttRequest("RETURN"), PuttRequest("MAKE"))
SIZE = (640, 480)
# The camera was knocked after calibrating: the scene now sits this far from where it was calibrated.
KNOCK = cv2.getRotationMatrix2D((SIZE[0] / 2, SIZE[1] / 2), 2.0, 1.0) + np.array([[0, 0, 30], [0, 0, -20]])


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clip")
    write_clip(ClipSpec(seed=21, requests=REQUESTS, default_rig=True), folder, progress=False)
    return folder


def _first_frame(video: Path) -> Image:
    capture = cv2.VideoCapture(str(video))
    ok, image = capture.read()
    capture.release()
    assert ok
    frame: Image = image
    return frame


def _as_matrix(matrix: npt.NDArray[np.float64]) -> Matrix:
    a, b = ([float(v) for v in row] for row in matrix)
    return (a[0], a[1], a[2]), (b[0], b[1], b[2])


def _calibrated_before_the_knock(frame: Image, truth: Calibration, folder: Path) -> Path:
    """A calibration and scene reference as they were made before the camera moved to where FRAME sees the
    rig whose regions are TRUTH."""
    undo = cv2.invertAffineTransform(KNOCK)
    before = cv2.warpAffine(frame, undo, SIZE, borderMode=cv2.BORDER_REFLECT)
    calibration = transform_calibration(truth, _as_matrix(undo))
    path = folder / "calibration.json"
    calibration.save(path)
    write_reference(before, calibration, path)
    return path


def _process(
    clip: Path, calibration: Path, out: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon", "process", str(clip / "clip.mp4"), "--calibration", str(calibration),
         "--out", str(out), "--start", "2026-03-01T10:00:00Z"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=600, check=False,
    )  # fmt: skip


def _details(out: Path) -> list[str]:
    return [row["Putt Detailed Classification"] for row in _report(out)["putt_list"]]


def _report(out: Path) -> dict[str, Any]:
    (report,) = out.glob("*.json")
    data: dict[str, Any] = json.loads(report.read_text())
    return data


def _expected(clip: Path) -> list[str]:
    return [p["detail"] for p in json.loads((clip / "truth.json").read_text())["putts"]]


def test_process_follows_a_knocked_camera_and_counts_right(
    clip: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    truth = load_calibration(clip / "calibration.json")
    calibration = _calibrated_before_the_knock(_first_frame(clip / "clip.mp4"), truth, tmp_path)
    result = _process(clip, calibration, tmp_path / "reports", cli_env)
    assert result.returncode == 0, result.stderr
    assert "warning: calibration drift followed: shift" in result.stderr
    assert _details(tmp_path / "reports") == _expected(clip)
    assert "putts_under_calibration_drift" not in _report(tmp_path / "reports")


def test_process_reports_a_reference_that_does_not_match_and_marks_the_putts(
    clip: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    calibration = tmp_path / "calibration.json"
    load_calibration(clip / "calibration.json").save(calibration)
    other = make_scene(7102)
    write_reference(Renderer(other, 7102).render(0.0, [], []).copy(), other.calibration, calibration)
    result = _process(clip, calibration, tmp_path / "reports", cli_env)
    assert result.returncode == 0, result.stderr
    assert "warning: calibration drift mismatch" in result.stderr
    report = _report(tmp_path / "reports")
    assert _details(tmp_path / "reports") == _expected(clip)  # the regions are right; the scene check is not
    assert report["putts_under_calibration_drift"] == list(range(1, len(_expected(clip)) + 1))


def test_process_reports_another_rigs_calibration_without_a_reference(
    clip: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    calibration = tmp_path / "calibration.json"
    make_scene(7005).calibration.save(calibration)
    result = _process(clip, calibration, tmp_path / "reports", cli_env)
    assert result.returncode == 0, result.stderr
    assert "warning: calibration drift mismatch" in result.stderr
    assert "(proposal)" in result.stderr


def test_process_raises_nothing_for_the_clips_own_calibration(
    clip: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    calibration = tmp_path / "calibration.json"
    load_calibration(clip / "calibration.json").save(calibration)
    write_reference(_first_frame(clip / "clip.mp4"), load_calibration(calibration), calibration)
    result = _process(clip, calibration, tmp_path / "reports", cli_env)
    assert result.returncode == 0, result.stderr
    assert "calibration drift" not in result.stderr
    assert _details(tmp_path / "reports") == _expected(clip)


def test_the_running_service_shows_the_followed_drift_in_its_state(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    state = tmp_path / "state"
    scene = make_scene(21)  # what `sim://?seed=21` shows
    frame = Renderer(scene, 21).render(0.0, [], []).copy()
    calibration = _calibrated_before_the_knock(frame, scene.calibration, tmp_path)
    env = {**cli_env, "PUTT_STATE_DIR": str(state), "PUTT_CAMERA_SOURCE": "sim://?seed=21&putts=4&realtime=1",
           "PUTT_CALIBRATION_FILE": str(calibration), "PUTT_STATE_STATUS_INTERVAL": "1"}  # fmt: skip
    run = ServiceProcess(tmp_path, env)
    try:
        assert wait_until(lambda: service_state(state).get("calibration_drift") == "followed", 60)
        data = service_state(state)
        shift = data["calibration_shift"]
        assert isinstance(shift, list)
        assert abs(shift[0] - 30) < 12  # the rig's centre: the shift plus what the turn moves it
        assert "confidence" in str(data["calibration_drift_detail"])
        assert data["status"] != "degraded"
        run.wait_line(r"calibration drift check: followed")
    finally:
        run.close()


def test_a_moved_calibration_keeps_lanes_and_quadrants_derived() -> None:
    calibration: Calibration = make_scene(7000).calibration
    moved = transform_calibration(calibration, _as_matrix(KNOCK))
    assert set(moved.polygons) == set(calibration.polygons)
    assert moved.frame_size == calibration.frame_size
