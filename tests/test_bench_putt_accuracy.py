"""`bench.putt_accuracy`: the candidate model is the one the daemon runs, and the row sets render what they
say."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.putt_accuracy import FIRST_SEED, HARDER_LOOKS, ROW_SETS, prepare, score_clip
from daemon.sim.clip import ClipSpec, build_clip
from tests.conftest import REPO


def test_the_daemon_runs_the_model_the_benchmark_is_given(tmp_path: Path) -> None:
    clip = prepare(tmp_path / "work", FIRST_SEED, (1, 3), "top")
    calibration = clip.folder / "calibration.json"
    shipped = score_clip(clip, calibration, tmp_path / "shipped")
    assert shipped.sessions_found == [3]
    copy = tmp_path / "candidate.onnx"
    shutil.copy(REPO / "models" / "ball.onnx", copy)
    shutil.copy(REPO / "models" / "ball.json", copy.with_suffix(".json"))
    checked = Path(f"{copy}+{REPO / 'models' / 'ball_verifier.onnx'}")  # the detector and its verifier
    assert score_clip(clip, calibration, tmp_path / "copy", checked) == shipped
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(subprocess.CalledProcessError):
        score_clip(clip, calibration, tmp_path / "broken", broken)


def test_a_model_that_does_not_load_is_refused_before_any_clip_is_rendered(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    work = tmp_path / "work"
    command = [sys.executable, "-m", "bench.putt_accuracy", "--clips", "1", "--work", str(work), "--model"]
    for model, reason in (
        (junk, "not a loadable ONNX model"),
        (tmp_path / "absent.onnx", "model file not found"),
    ):
        result = subprocess.run(
            [*command, str(model)], cwd=tmp_path, capture_output=True, text=True, check=False
        )
        assert result.returncode == 2
        assert f"--model: {model}: {reason}" in result.stderr
        assert "Traceback" not in result.stderr
        assert not work.exists()


def first_frame(clip_folder: Path) -> np.ndarray:
    video = cv2.VideoCapture(str(clip_folder / "clip.mp4"))
    ok, frame = video.read()
    video.release()
    assert ok
    return np.asarray(frame)


def test_the_harder_looks_row_set_runs_the_same_putts_through_the_harder_looks(tmp_path: Path) -> None:
    plain = prepare(tmp_path, FIRST_SEED + 1, (1, 2), "top")
    harder = prepare(tmp_path, FIRST_SEED + 1, (1, 2), "top", harder=True)
    assert harder.folder != plain.folder
    assert harder.details == plain.details
    assert harder.relabelled
    assert ROW_SETS["harder"].harder
    assert not build_clip(ClipSpec(seed=FIRST_SEED + 1, realism=HARDER_LOOKS))[1].extras.plain
    difference = cv2.absdiff(first_frame(plain.folder), first_frame(harder.folder))
    assert float(difference.mean()) > 5
