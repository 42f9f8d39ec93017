"""How detected boxes score against the true balls of a frame: matches at IoU 0.5, misses, false alarms."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from daemon.models import Box
from daemon.settings import ModelSettings
from daemon.vision.calibration import Calibration, Region
from daemon.vision.detector import DetectorConfig
from tools.real_paste import LabelBox

DEFAULT_CONFIDENCE = ModelSettings().confidence  # what the daemon runs with
VERIFIED_BY = "+"  # a bench model `ball.onnx+verifier.onnx`: the detector with the verifier after it
AT_THRESHOLD = "@"  # `ball.onnx+verifier.onnx@0.3`: the verifier at a threshold other than the daemon's


def detector_config(model: Path, **options: Any) -> DetectorConfig:
    """The detector config of a bench's model argument: a detector's ONNX file, DETECTOR+VERIFIER, or
    DETECTOR+VERIFIER@THRESHOLD."""
    detector, _, verifier = str(model).partition(VERIFIED_BY)
    if not verifier:
        return DetectorConfig(path=Path(detector), verifier=None, **options)
    verifier, _, threshold = verifier.partition(AT_THRESHOLD)
    if threshold:
        options["verifier_threshold"] = float(threshold)
    else:
        options.setdefault("verifier_threshold", ModelSettings().verifier_threshold)
    return DetectorConfig(path=Path(detector), verifier=Path(verifier), **options)


@dataclass
class Score:
    """Matches, misses and false alarms over a set of frames."""

    truths: int = 0
    hits: int = 0
    false_alarms: int = 0
    centre_errors: list[float] | None = None
    recall_only: bool = False  # a part of the balls: detections are not charged to it

    def add(
        self, truth: list[Box], ignored: list[Box], found: list[Box], outside: list[Box] | None = None
    ) -> list[Box]:
        """Score one frame; returns the boxes of FOUND counted as false alarms."""
        self.centre_errors = self.centre_errors if self.centre_errors is not None else []
        unmatched = list(found)
        for box in truth:
            best = max(unmatched, key=box.iou, default=None)
            self.truths += 1
            if best is not None and box.iou(best) >= 0.5:
                self.hits += 1
                unmatched.remove(best)
                self.centre_errors.append(
                    float(np.hypot(best.center.x - box.center.x, best.center.y - box.center.y))
                )
        alarms = [
            box
            for box in unmatched
            if not any(box.iou(other) >= 0.3 for other in ignored) and box not in (outside or [])
        ]
        self.false_alarms += len(alarms)
        return alarms

    def recall(self) -> float:
        return self.hits / self.truths if self.truths else float("nan")

    def precision(self) -> float:
        found = self.hits + self.false_alarms
        return self.hits / found if found else float("nan")

    def error(self) -> float:
        """Median centre error of the matched balls, px."""
        return statistics.median(self.centre_errors) if self.centre_errors else float("nan")


def watched(calibration: Calibration, box: Box) -> bool:
    """Whether the daemon looks at a ball here: inside the rig's bounds and not in the ignore area."""
    x1, y1, x2, y2 = calibration.bounds()
    c = box.center
    inside = x1 <= c.x <= x2 and y1 <= c.y <= y2
    return inside and not calibration.contains(Region.IGNORE_AREA, c)


def label_box(label: LabelBox) -> Box:
    return Box(
        label.x - label.width / 2,
        label.y - label.height / 2,
        label.x + label.width / 2,
        label.y + label.height / 2,
    )
