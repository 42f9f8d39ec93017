"""The shipped model: its sidecar describes it, and it finds balls in frames it was never trained on."""

from __future__ import annotations

import json

from daemon.detector import BallDetector, DetectorConfig, file_sha256
from daemon.models import Frame
from daemon.sim.dataset import render_example
from tests.conftest import REPO

MODEL = REPO / "models" / "ball.onnx"


def test_sidecar_matches_the_shipped_model() -> None:
    sidecar = json.loads(MODEL.with_suffix(".json").read_text())
    assert sidecar["sha256"] == file_sha256(MODEL)
    assert sidecar["names"] == {"0": "ball"}
    assert sidecar["training"]["epochs"] > 0
    assert MODEL.stat().st_size < 8_000_000


def test_shipped_model_finds_balls_in_unseen_rendered_frames() -> None:
    detector = BallDetector.open(DetectorConfig(path=MODEL, sha256=file_sha256(MODEL)))
    balls = found = false_alarms = 0
    for seed in range(9_100_000, 9_100_060):
        image, info = render_example(seed)
        if info.occluded:
            continue
        detections = detector.detect(Frame(0, 0.0, image)).items
        unmatched = [d.box for d in detections]
        for box in info.balls:
            balls += 1
            best = max(unmatched, key=box.iou, default=None)
            if best is not None and box.iou(best) >= 0.5:
                found += 1
                unmatched.remove(best)
        false_alarms += len(unmatched)
    assert balls >= 50
    assert found / balls >= 0.9
    assert false_alarms <= 0.05 * balls
