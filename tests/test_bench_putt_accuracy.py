"""`bench.putt_accuracy --model`: the candidate model is the one the daemon runs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bench.putt_accuracy import FIRST_SEED, prepare, score_clip
from tests.conftest import REPO


def test_the_daemon_runs_the_model_the_benchmark_is_given(tmp_path: Path) -> None:
    clip = prepare(tmp_path / "work", FIRST_SEED, (1, 3), "top")
    calibration = clip.folder / "calibration.json"
    shipped = score_clip(clip, calibration, tmp_path / "shipped")
    assert shipped.sessions_found == [3]
    copy = tmp_path / "candidate.onnx"
    shutil.copy(REPO / "models" / "ball.onnx", copy)
    shutil.copy(REPO / "models" / "ball.json", copy.with_suffix(".json"))
    assert score_clip(clip, calibration, tmp_path / "copy", copy) == shipped
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(subprocess.CalledProcessError):
        score_clip(clip, calibration, tmp_path / "broken", broken)
