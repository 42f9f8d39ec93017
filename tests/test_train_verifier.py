"""Training the verifier: what each detector box is labelled, and a tiny run that gives a loadable model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from daemon.models import Box
from daemon.vision.detector import file_sha256
from daemon.vision.verifier import PATCH, BallVerifier
from tests.conftest import REPO
from tools.train_verifier import BALL, INSERT, OTHER, Patches, harvest_frame

BALL_BOX = Box(100.0, 100.0, 110.0, 110.0)
INSERT_BOX = Box(300.0, 200.0, 310.0, 210.0)


def test_each_detector_box_is_labelled_by_what_it_sits_on() -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    found = [
        Box(100.5, 100.5, 110.5, 110.5),  # on the ball
        Box(104.0, 100.0, 114.0, 110.0),  # a part of it: neither answer is right, left out
        Box(301.0, 200.0, 311.0, 210.0),  # on the insert
        Box(500.0, 50.0, 510.0, 60.0),  # on nothing
        Box(400.0, 400.0, 410.0, 410.0),  # on a ball hidden by the putter: left out
    ]
    patches = Patches([], [])
    harvest_frame(
        patches, image, found, np.random.default_rng(0),
        balls=[BALL_BOX], skip=[Box(401.0, 401.0, 411.0, 411.0)], inserts=[INSERT_BOX],
    )  # fmt: skip
    # The three kept boxes, then a nudged patch of the true ball and of the insert.
    assert patches.kinds == [BALL, INSERT, OTHER, BALL, INSERT]
    assert all(p.shape == (PATCH, PATCH, 3) for p in patches.images)


def test_a_tiny_run_gives_a_verifier_the_daemon_loads(tmp_path: Path) -> None:
    out = tmp_path / "verifier"
    command = [sys.executable, "-m", "tools.train_verifier", "--out", str(out), "--seeds", "1", "--frames",
               "4", "--putter-seeds", "1", "--real-repeat", "1", "--epochs", "1"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "threshold  balls dropped" in result.stdout
    model = out / "verifier.onnx"
    verifier = BallVerifier.open(model)
    chances = verifier.run(np.zeros((3, 3, PATCH, PATCH), np.float32))
    assert chances.shape == (3,)
    assert ((chances > 0) & (chances < 1)).all()
    sidecar = json.loads((out / "verifier.json").read_text())
    assert sidecar["sha256"] == file_sha256(model)
    assert sidecar["detector_sha256"] == file_sha256(REPO / "models" / "ball.onnx")
    assert sidecar["input"]["patch"] == PATCH
    assert {"train", "validation"} <= {p.name.split("-")[1] for p in out.glob("patches-*.npz")}
