"""Detector accuracy on frames the model never saw: simulator clips of unseen seeds, and held-out real images.

    .venv/bin/python -m bench.detector_accuracy [--model models/ball.onnx] [--frames 1000]

Simulator frames are sampled from clips of seeds 7000 and up (training uses dataset seeds 1000-6000 and clip
seeds 20000-21999), every frame with at least one ball in play, and run through the detector as the daemon
runs it (cropped to the calibrated rig). The oblique rows are clips of seeds 7500 and up seen by a camera at
the golfer's end looking down the mat at 25 to 60 degrees; the harder-looks rows clips of seeds 7700 and up,
from any camera, each harder look of `daemon.sim.realism` on in half of them. A detection matches a ball when
their IoU is at least 0.5. Balls more than a fifth hidden by a putter or foot
(`daemon.sim.truth.HIDDEN_SHARE`), and balls in the ignore area or outside the rig (which the daemon never
looks at), are not counted against recall, and a detection on one of them, or in the ignore area, is not a
false positive.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from daemon.models import Box, Frame
from daemon.settings import ModelSettings
from daemon.sim.clip import ClipSpec, build_clip
from daemon.sim.perspective import CameraChoice
from daemon.sim.realism import Realism
from daemon.vision.calibration import Calibration, Region
from daemon.vision.detector import BallDetector, DetectorConfig
from tools.train_detector import REAL, real_split

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIDENCE = ModelSettings().confidence  # what the daemon runs with
PLAIN_CLIPS = ClipSpec()
# Row sets: name -> first clip seed and what the clips look like.
ROW_SETS = {
    "simulator": (7000, PLAIN_CLIPS),
    "oblique camera": (7500, ClipSpec(camera=CameraChoice("oblique"))),
    "harder looks": (7700, ClipSpec(camera=CameraChoice("random"), realism=Realism.every(0.5))),
}


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
    ) -> None:
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
        for box in unmatched:
            if not any(box.iou(other) >= 0.3 for other in ignored) and box not in (outside or []):
                self.false_alarms += 1

    def row(self, name: str, frames: int) -> str:
        recall = self.hits / self.truths if self.truths else float("nan")
        found = self.hits + self.false_alarms
        precision = f"{self.hits / found if found else float('nan'):9.4f}" if not self.recall_only else "-"
        error = statistics.median(self.centre_errors) if self.centre_errors else float("nan")
        return f"{name:34} {frames:7d} {self.truths:6d} {recall:7.4f} {precision:>9} {error:13.2f}"


def watched(calibration: Calibration, box: Box) -> bool:
    """Whether the daemon looks at a ball here: inside the rig's bounds and not in the ignore area."""
    x1, y1, x2, y2 = calibration.bounds()
    c = box.center
    inside = x1 <= c.x <= x2 and y1 <= c.y <= y2
    return inside and not calibration.contains(Region.IGNORE_AREA, c)


def simulator_score(model: Path, frames: int, seeds: int, first_seed: int = 7000) -> Score:
    """Detector score on FRAMES frames sampled from clips of SEEDS seeds from FIRST_SEED on."""
    return simulator_scores(model, frames, seeds, first_seed)["all"]


def simulator_scores(
    model: Path, frames: int, seeds: int, first_seed: int = 7000, look: ClipSpec = PLAIN_CLIPS
) -> dict[str, Score]:
    """Scores over all balls, and over resting and rolling balls alone (false alarms count in "all" only)."""
    detector_for: dict[tuple[int, int, int, int], BallDetector] = {}
    scores = {"all": Score(), "resting": Score(recall_only=True), "rolling": Score(recall_only=True)}
    per_seed = frames // seeds
    for seed in range(first_seed, first_seed + seeds):
        script, renderer, timeline = build_clip(replace(look, seed=seed, putts=6))
        bounds = script.scene.calibration.bounds()
        detector = detector_for.get(bounds) or BallDetector.open(
            DetectorConfig(path=model, confidence=DEFAULT_CONFIDENCE, crop=bounds)
        )
        detector_for[bounds] = detector
        fps = script.scene.fps
        candidates = [f for f in range(int(script.duration * fps)) if timeline.balls(f / fps)]
        rng = np.random.default_rng(seed)
        for f in sorted(rng.choice(candidates, size=min(per_seed, len(candidates)), replace=False)):
            t = f / script.scene.fps
            balls = timeline.balls(t)
            image = renderer.render(t, balls, timeline.occluders(t)).copy()
            found = [d.box for d in detector.detect(Frame(int(f), t, image)).items]
            cal = script.scene.calibration
            counted = [b for b in balls if not b.occluded and watched(cal, b.box)]
            ignored = [b.box for b in balls if b.occluded or not watched(cal, b.box)]
            outside = [box for box in found if not watched(cal, box)]
            scores["all"].add([b.box for b in counted], ignored, found, outside)
            for name, rolling in (("resting", False), ("rolling", True)):
                part = [b.box for b in counted if (b.state.speed > 0) == rolling]
                scores[name].add(part, [], found, found)
    return scores


def real_score(model: Path) -> tuple[Score, int]:
    _, held = real_split(5)
    detector = BallDetector.open(DetectorConfig(path=model, confidence=DEFAULT_CONFIDENCE))
    score = Score()
    for path in held:
        image = cv2.imread(str(path))
        if image is None:
            raise OSError(f"cannot read {path}")
        h, w = image.shape[:2]
        truth = []
        for line in (REAL / "labels" / f"{path.stem}.txt").read_text().splitlines():
            _, x, y, bw, bh = (float(v) for v in line.split())
            truth.append(Box((x - bw / 2) * w, (y - bh / 2) * h, (x + bw / 2) * w, (y + bh / 2) * h))
        found = [d.box for d in detector.detect(Frame(0, 0.0, image)).items]
        score.add(truth, [], found)
    return score, len(held)


def table(model: Path, frames: int, seeds: int) -> None:
    """Print the accuracy table of one model."""
    real, real_frames = real_score(model)
    print(f"detector accuracy of {model} at its default confidence (IoU >= 0.5 is a match)")
    print(f"{'set':34} {'frames':>7} {'balls':>6} {'recall':>7} {'precision':>9} {'centre err px':>13}")
    for name, (first_seed, look) in ROW_SETS.items():
        scores = simulator_scores(model, frames, seeds, first_seed, look)
        print(scores["all"].row(f"{name}, unseen seeds ({seeds})", frames))
        print(scores["resting"].row("  of which resting balls", frames))
        print(scores["rolling"].row("  of which rolling balls", frames))
    print(real.row("real images, held out", real_frames))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, nargs="+", default=[REPO / "models" / "ball.onnx"], help="one table per model"
    )
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    for model in args.model:
        table(model, args.frames, args.seeds)
    print("targets (simulator): recall >= 0.98, precision >= 0.98, median centre error <= 1.5 px")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
