"""Where the detector fails on the harder looks: its score over the clips with each look, and without it.

    .venv/bin/python -m bench.detector_looks [--model models/ball.onnx [other.onnx ...]] [--frames 4000]
        [--seeds 80]

The frames are those of `bench.detector_accuracy`'s harder-looks rows (the same seeds and the same frames
from each), so the "every clip" line is that bench's row. Each look of `daemon.sim.realism` is on in about
half of the clips, drawn independently; a look the detector struggles with shows as a recall or a count of
false alarms much worse with it than without it. Clips often have several looks at once, so read the rows
together: a look that is bad alone is bad in every row it is on.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

import cv2

from bench.detection_score import Score
from bench.detector_accuracy import (
    ROW_SETS,
    add_sample_options,
    check_sample,
    refuse_unloadable,
    simulator_scores,
)
from daemon.closed_pipe import run_main
from daemon.sim.realism import Extras

REPO = Path(__file__).resolve().parents[1]
FIRST_SEED, LOOK = ROW_SETS["harder looks"]
# A second ball is laid only into dataset images: clips have the balls their script has.
LOOKS = tuple(f.name for f in fields(Extras) if f.name not in {"seed", "second_ball"})


def merged(scores: list[Score], *, recall_only: bool = False) -> Score:
    """One score over the frames of SCORES."""
    total = Score(recall_only=recall_only, centre_errors=[])
    for score in scores:
        total.truths += score.truths
        total.hits += score.hits
        total.false_alarms += score.false_alarms
        total.centre_errors = [*(total.centre_errors or []), *(score.centre_errors or [])]
    return total


def per_clip(model: Path, frames: int, seeds: int) -> list[tuple[Extras, dict[str, Score]]]:
    """Each harder-looks clip's looks and scores, sampled as `bench.detector_accuracy` samples them."""
    return [
        (Extras.draw(LOOK.realism, seed), simulator_scores(model, frames // seeds, 1, seed, LOOK))
        for seed in range(FIRST_SEED, FIRST_SEED + seeds)
    ]


def rows(clips: list[tuple[Extras, dict[str, Score]]]) -> dict[str, tuple[int, Score, Score]]:
    """Name -> clips, score of all balls and of rolling balls: every clip, then each look on and off."""
    groups: dict[str, list[dict[str, Score]]] = {"every clip": [scores for _, scores in clips]}
    for look in LOOKS:
        for on in (True, False):
            name = f"{look} {'on' if on else 'off'}"
            groups[name] = [scores for extras, scores in clips if getattr(extras, look) == on]
    return {
        name: (
            len(group),
            merged([s["all"] for s in group]),
            merged([s["rolling"] for s in group], recall_only=True),
        )
        for name, group in groups.items()
    }


def print_table(models: list[Path], tables: list[dict[str, tuple[int, Score, Score]]]) -> None:
    width = 26
    print("detector on the harder-looks clips, by look; recall / rolling recall / false alarms")
    print(
        f"{'clips':22} {'n':>3} "
        + " ".join(f"{m.parent.name + '/' + m.name:>{width}}"[-width:] for m in models)
    )
    for name, (count, _, _) in tables[0].items():
        cells = []
        for table in tables:
            _, every, rolling = table[name]
            cells.append(f"{every.recall():.3f} / {rolling.recall():.3f} / {every.false_alarms:4d}")
        print(f"{name:22} {count:3d} " + " ".join(f"{c:>{width}}" for c in cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, nargs="+", default=[REPO / "models" / "ball.onnx"], help="models side by side"
    )
    add_sample_options(parser)
    args = parser.parse_args()
    check_sample(parser, args)
    refuse_unloadable(parser, args.model)
    cv2.setNumThreads(1)
    print_table(args.model, [rows(per_clip(model, args.frames, args.seeds)) for model in args.model])
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
