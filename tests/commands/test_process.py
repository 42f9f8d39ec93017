"""`putt-daemon process` and `demo`: the whole vision pipeline with the shipped model on real video files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from daemon.models import Frame
from daemon.sim.clip import ClipSpec, write_clip
from daemon.sim.script import PuttRequest
from daemon.vision.motion_gate import MotionGate, MotionGateConfig
from tests.conftest import REPO

REQUESTS = (PuttRequest("MAKE"), PuttRequest("CATCH"), PuttRequest("RETURN"), PuttRequest("MAKE"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clip")
    write_clip(ClipSpec(seed=21, requests=REQUESTS, default_rig=True), folder, progress=False)
    return folder


def process(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon", "process", *args],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=600, check=False,
    )  # fmt: skip


def test_process_finds_every_putt_and_writes_the_report(
    clip: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    out = tmp_path / "reports"
    annotated = tmp_path / "annotated.mp4"
    result = process(
        str(clip / "clip.mp4"), "--calibration", str(clip / "calibration.json"), "--out", str(out),
        "--annotate", str(annotated), "--start", "2026-03-01T10:00:00Z", env=cli_env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    truth = json.loads((clip / "truth.json").read_text())
    expected = [p["detail"] for p in truth["putts"]]
    for detail in expected:
        assert detail in result.stdout
    (report,) = out.glob("*.json")
    data = json.loads(report.read_text())
    assert [row["Putt Detailed Classification"] for row in data["putt_list"]] == expected
    assert data["total_putts"] == len(expected)
    assert data["total_makes"] == sum(d.startswith("MAKE") for d in expected)
    assert data["started_at"].startswith("2026-03-01T10:00")
    assert report.with_suffix(".csv").is_file()
    capture = cv2.VideoCapture(str(annotated))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == truth["frames"]
    capture.release()


def test_missing_and_corrupt_videos_are_clear_errors(tmp_path: Path, cli_env: dict[str, str]) -> None:
    result = process(str(tmp_path / "absent.mp4"), env=cli_env)
    assert result.returncode == 66
    assert "video file not found" in result.stderr
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).bytes(10_000))
    result = process(str(garbage), env=cli_env)
    assert result.returncode == 65
    assert "Traceback" not in result.stderr
    assert "video file is not a readable video" in result.stderr


def test_bad_calibration_and_bad_model_stop_with_78(
    clip: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    bad = tmp_path / "cal.json"
    bad.write_text('{"RAMP_ROI": [[0, 0]]}')
    result = process(str(clip / "clip.mp4"), "--calibration", str(bad), env=cli_env)
    assert result.returncode == 78
    assert "RAMP_ROI: needs at least 3 points" in result.stderr
    model = tmp_path / "ball.onnx"
    model.write_bytes(b"not a model")
    result = process(str(clip / "clip.mp4"), "--calibration", str(clip / "calibration.json"),
                     env=cli_env | {"PUTT_MODEL_PATH": str(model)})  # fmt: skip
    assert result.returncode == 78
    assert "not a loadable ONNX model" in result.stderr


def test_demo_runs_the_main_job_on_a_simulated_rig(cli_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "daemon", "demo", "--putts", "3"],
        capture_output=True, text=True, env=cli_env, cwd=REPO, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 of 3 putts classified as simulated" in result.stdout
    assert '"total_putts": 3' in result.stdout


def frame(index: int, ball_x: float) -> Frame:
    image = np.full((480, 640, 3), (60, 140, 50), np.uint8)
    cv2.circle(image, (round(ball_x), 240), 6, (240, 240, 240), -1, cv2.LINE_AA)
    return Frame(index, index / 30.0, image)


def test_motion_gate_skips_still_frames_and_wakes_on_motion() -> None:
    gate = MotionGate(MotionGateConfig())
    assert gate.moved(frame(0, 100.0))
    gate.detected(frame(0, 100.0))
    assert not gate.moved(frame(1, 100.0))
    assert not gate.moved(frame(2, 100.4))  # sub-pixel jitter of a resting ball
    assert gate.moved(frame(3, 104.0))
    assert not gate.moved(frame(89, 100.0))
    assert gate.moved(frame(90, 100.0))  # max_skip (3 s at 30 fps) since the detector last looked


def test_bad_start_time_is_a_usage_error(clip: Path, cli_env: dict[str, str]) -> None:
    result = process(str(clip / "clip.mp4"), "--start", "yesterday", env=cli_env)
    assert result.returncode == 2
    assert "not an ISO-8601 time: 'yesterday'" in result.stderr
