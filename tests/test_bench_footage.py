"""bench.footage: labelled box footage, held out from training, scored as the daemon would see it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.detection_score import Score
from bench.footage import check_footage, footage_score
from daemon.vision.calibration import load_calibration
from tests.conftest import REPO

MODEL = REPO / "models" / "ball.onnx"
SEED = 7312  # a held-out clip seed: never trained on


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated session drafted into a footage folder with its calibration, as a box's would be."""
    clip = tmp_path_factory.mktemp("clip")
    simulate = [sys.executable, "-m", "daemon", "simulate", "--out", str(clip), "--putts", "3"]
    subprocess.run([*simulate, "--seed", str(SEED)], cwd=REPO, check=True, capture_output=True, timeout=300)
    out = tmp_path_factory.mktemp("footage")
    draft = [sys.executable, "-m", "tools.draft_labels", str(clip / "clip.mp4"), "--out", str(out)]
    done = subprocess.run(
        [*draft, "--every", "6", "--calibration", str(clip / "calibration.json")],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out / "calibration.json").read_bytes() == (clip / "calibration.json").read_bytes()
    return out


def copy_of(footage: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "footage"
    shutil.copytree(footage, folder)
    return folder


def test_the_drafting_model_agrees_with_its_own_labels(footage: Path) -> None:
    score, pictures = footage_score(MODEL, footage)
    assert pictures == len(list((footage / "images").glob("*.jpg")))
    assert score.truths >= 40
    assert score.recall() >= 0.97
    assert score.precision() >= 0.97
    assert score.error() <= 0.5


def test_a_ball_taken_from_the_labels_is_a_false_alarm(footage: Path, tmp_path: Path) -> None:
    before, _ = footage_score(MODEL, footage)
    folder = copy_of(footage, tmp_path)
    label = next(p for p in sorted((folder / "labels").glob("*.txt")) if p.read_text().count("\n") == 1)
    label.write_text("")
    after, _ = footage_score(MODEL, folder)
    assert (after.truths, after.hits) == (before.truths - 1, before.hits - 1)
    assert after.false_alarms == before.false_alarms + 1


def test_a_ball_outside_the_rig_counts_only_without_the_calibration(footage: Path, tmp_path: Path) -> None:
    folder = copy_of(footage, tmp_path)
    x1, y1, _, _ = load_calibration(folder / "calibration.json").bounds()
    assert x1 > 20
    assert y1 > 20
    label = sorted((folder / "labels").glob("*.txt"))[0]
    label.write_text(label.read_text() + f"0 {10 / 640:.6f} {10 / 480:.6f} {12 / 640:.6f} {12 / 480:.6f}\n")
    with_rig, _ = footage_score(MODEL, folder)
    before, _ = footage_score(MODEL, footage)
    assert (with_rig.truths, with_rig.hits) == (before.truths, before.hits)
    (folder / "calibration.json").unlink()
    whole_frame: Score = footage_score(MODEL, folder)[0]
    assert whole_frame.truths >= before.truths + 1


def test_footage_that_is_no_measure_is_refused(footage: Path, tmp_path: Path) -> None:
    assert check_footage(footage, [MODEL]) is None
    # A model whose sidecar says an earlier stage was trained on the folder.
    model = tmp_path / "trained" / "ball.onnx"
    model.parent.mkdir()
    shutil.copy2(MODEL, model)
    sidecar = json.loads(MODEL.with_suffix(".json").read_text())
    sidecar["training"]["previous"] = {"stage14": {"real_extra": [str(footage)]}}
    model.with_suffix(".json").write_text(json.dumps(sidecar))
    assert (
        check_footage(footage, [MODEL, model])
        == f"{footage}: {model} was trained on it, so it is not held out"
    )
    command = [sys.executable, "-m", "bench.detector_accuracy", "--model", str(MODEL), str(model)]
    done = subprocess.run(
        [*command, "--footage", str(footage)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].endswith(
        f"--footage {footage}: {model} was trained on it, so it is not held out"
    )
    assert not done.stdout
    # Two folders of one name would share a row: refused before scoring.
    twin = tmp_path / "twin" / footage.name
    shutil.copytree(footage, twin)
    done = subprocess.run(
        [sys.executable, "-m", "bench.detector_accuracy", "--footage", str(footage), "--footage", str(twin)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (2, "")
    assert "two --footage folders make the same row" in done.stderr.splitlines()[-1]
    # No folder, a picture with no label file, and a calibration that does not load.
    assert check_footage(tmp_path / "none", [MODEL]) == f"{tmp_path / 'none'}: no such folder"
    folder = copy_of(footage, tmp_path)
    next((folder / "labels").glob("*.txt")).unlink()
    assert "have no label file" in str(check_footage(folder, [MODEL]))
    folder = copy_of(footage, tmp_path / "again")
    (folder / "calibration.json").write_text("{")
    assert str(check_footage(folder, [MODEL])).startswith(f"{folder / 'calibration.json'}: ")
