"""Where the detector's false alarms sit on a simulator set: what each one is next to, and how sure it was.

    .venv/bin/python -m bench.detector_false_alarms [--model models/ball.onnx [other.onnx ...]]
        [--set "harder looks"] [--frames 4000] [--seeds 80]

The frames and the counting are `bench.detector_accuracy`'s (the same seeds, frames and IoU rules), so the
total is that bench's false alarms for the set. Each false alarm goes to the first place that fits it:
- on the putter's look-alike insert: its centre within a box width of where the insert is drawn;
- beside a ball: within three of its widths of a ball (a second box on one ball, or a ball's shadow);
- by a putter or foot: one is in the picture;
- elsewhere with glare on, or elsewhere: nothing drawn near it (glare spots are not placed by the clip, so
  they are told apart only by the look being on).
The median confidence of each row says whether a higher threshold would remove them; the clips line names
the clips with the most, to look at.
"""

from __future__ import annotations

import argparse
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from bench.detection_score import Score
from bench.detector_accuracy import (
    ROW_SETS,
    CropDetectors,
    SampledFrame,
    add_sample_options,
    check_sample,
    refuse_unloadable,
    sampled_frames,
    score_frame,
)
from daemon.closed_pipe import run_main
from daemon.models import Box
from daemon.sim.realism import lookalike_insert

REPO = Path(__file__).resolve().parents[1]
PLACES = (
    "on the look-alike insert",
    "beside a ball",
    "by a putter or foot",
    "elsewhere, glare on",
    "elsewhere",
)
BESIDE_A_BALL = 3.0  # ball widths


@dataclass
class Alarms:
    """One model's false alarms on a set: the confidences in each place, and the count in each clip."""

    score: Score = field(default_factory=Score)
    confidences: dict[str, list[float]] = field(default_factory=lambda: {place: [] for place in PLACES})
    clips: Counter[int] = field(default_factory=Counter)


def place_of(box: Box, sampled: SampledFrame) -> str:
    """Which of PLACES a false alarm at BOX in SAMPLED is."""
    c = box.center
    if sampled.extras.lookalike:
        for occluder, at in sampled.occluders:
            if occluder.kind != "putter":
                continue
            (x, y), _ = lookalike_insert(at, occluder.size)
            ix, iy = sampled.scene.to_image(x, y)
            if abs(c.x - ix) <= box.width and abs(c.y - iy) <= box.height:
                return PLACES[0]
    for ball in sampled.balls:
        b = ball.box.center
        reach = BESIDE_A_BALL * ball.box.width
        if abs(c.x - b.x) <= reach and abs(c.y - b.y) <= reach:
            return PLACES[1]
    if sampled.occluders:
        return PLACES[2]
    return PLACES[3] if sampled.extras.glare else PLACES[4]


def false_alarms(model: Path, frames: int, seeds: int, set_name: str) -> Alarms:
    first_seed, look = ROW_SETS[set_name]
    detectors = CropDetectors(model)
    alarms = Alarms()
    for sampled in sampled_frames(frames, seeds, first_seed, look):
        found = detectors.detect(sampled)
        for box in score_frame(alarms.score, sampled, [d.box for d in found]):
            confidence = next(d.confidence for d in found if d.box is box)
            alarms.confidences[place_of(box, sampled)].append(confidence)
            alarms.clips[sampled.seed] += 1
    return alarms


def print_table(models: list[Path], set_name: str, results: list[Alarms]) -> None:
    width = 26
    print(f"detector false alarms on the {set_name} set, by where they sit; count / median confidence")
    print(f"{'place':28} " + " ".join(f"{m.parent.name + '/' + m.name:>{width}}"[-width:] for m in models))
    for place in (*PLACES, "all"):
        cells = []
        for alarms in results:
            values = (
                [v for vs in alarms.confidences.values() for v in vs]
                if place == "all"
                else alarms.confidences[place]
            )
            median = f"{statistics.median(values):.2f}" if values else "-"
            cells.append(f"{len(values):5d} / {median:>4}")
        print(f"{place:28} " + " ".join(f"{c:>{width}}" for c in cells))
    for model, alarms in zip(models, results, strict=True):
        worst = ", ".join(f"{seed} ({n})" for seed, n in alarms.clips.most_common(5)) or "none"
        print(f"{model}: precision {alarms.score.precision():.4f}; most in clips {worst}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, nargs="+", default=[REPO / "models" / "ball.onnx"], help="models side by side"
    )
    parser.add_argument(
        "--set", choices=tuple(ROW_SETS), default="harder looks", help="the simulator set (harder looks)"
    )
    add_sample_options(parser)
    args = parser.parse_args()
    check_sample(parser, args)
    refuse_unloadable(parser, args.model)
    cv2.setNumThreads(1)
    results = [false_alarms(model, args.frames, args.seeds, args.set) for model in args.model]
    print_table(args.model, args.set, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
