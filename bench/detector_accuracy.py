"""Detector accuracy on frames the model never saw: simulator clips of unseen seeds, and held-out real images.

    .venv/bin/python -m bench.detector_accuracy [--model models/ball.onnx [other.onnx ...]] [--frames 4000]
        [--seeds 80] [--footage held-out-footage/ ...]

One table, the models side by side, each measure marked where it misses its target, and for each further
model how many measures it does better and worse on than the first. A model is a detector's ONNX file, run
alone, or DETECTOR+VERIFIER (`models/ball.onnx+models/ball_verifier.onnx`, as the daemon runs by default):
the detector with the verifier's second look after it (`daemon.vision.verifier`).

Simulator frames are sampled from clips of seeds 7000 and up (training uses dataset seeds 1000-6500 and clip
seeds 20000 and up), every frame with at least one ball in play, and run through the detector as the daemon
runs it (cropped to the calibrated rig): 50 frames from each of 80 clips a set. With 20 clips a rolling row
held about 200 balls, and two models' order on it turned on one or two balls near the threshold. The
oblique rows are clips of seeds 7500 and up seen by a camera at the golfer's end looking down the mat at 25
to 60 degrees; the harder-looks rows clips of seeds 7700 and up, from any camera, each harder look of
`daemon.sim.realism` on in half of them. A detection matches a ball when
their IoU is at least 0.5. Balls more than a fifth hidden by a putter or foot
(`daemon.sim.truth.HIDDEN_SHARE`), and balls in the ignore area or outside the rig (which the daemon never
looks at), are not counted against recall, and a detection on one of them, or in the ignore area, is not a
false positive. The real images are scored against their labels plus the one ball the labels leave out
(`REAL_UNLABELLED`). The last row is three copies of each held-out real image with balls cut from the
held-out images laid on its white table (`tools.real_paste`, as training pastes the training images' balls):
real balls on real pale ground, of which the held-out images alone show one. It has no target of its own.
Each --footage folder (labelled box footage a model was never trained on, `bench/footage.py`) adds a row
after them, with the real images' target.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from bench.detection_score import DEFAULT_CONFIDENCE, Score, detector_config, label_box, watched
from bench.footage import check_footage, footage_score, row_name
from daemon.closed_pipe import run_main
from daemon.errors import ModelError
from daemon.models import Box, Detection, Frame
from daemon.sim.clip import ClipSpec, build_clip
from daemon.sim.perspective import CameraChoice
from daemon.sim.realism import Extras, Realism
from daemon.sim.rig import Scene
from daemon.sim.script import Occluder
from daemon.sim.truth import BallView
from daemon.vision.detector import BallDetector
from tools.real_paste import pasted_copies, read_labels
from tools.train_detector import REAL, real_split

REPO = Path(__file__).resolve().parents[1]
PLAIN_CLIPS = ClipSpec()
PASTED_VARIANTS, PASTED_SEED = 3, 7000
DEFAULT_FRAMES, DEFAULT_SEEDS = 4000, 80
MAX_SEEDS = 200  # more would run the simulator set into the oblique one's seeds
# Row sets: name -> first clip seed and what the clips look like.
ROW_SETS = {
    "simulator": (7000, PLAIN_CLIPS),
    "oblique camera": (7500, ClipSpec(camera=CameraChoice("oblique"))),
    "harder looks": (7700, ClipSpec(camera=CameraChoice("random"), realism=Realism.every(0.5))),
}


def simulator_score(model: Path, frames: int, seeds: int, first_seed: int = 7000) -> Score:
    """Detector score on FRAMES frames sampled from clips of SEEDS seeds from FIRST_SEED on."""
    return simulator_scores(model, frames, seeds, first_seed)["all"]


@dataclass(frozen=True, slots=True)
class SampledFrame:
    """One bench frame of a simulated clip, rendered, with what it shows."""

    seed: int
    index: int
    image: np.ndarray
    scene: Scene
    extras: Extras
    balls: list[BallView]
    occluders: list[tuple[Occluder, tuple[float, float]]]


def sampled_frames(
    frames: int, seeds: int, first_seed: int = 7000, look: ClipSpec = PLAIN_CLIPS, *, putter: bool = False
) -> Iterator[SampledFrame]:
    """FRAMES frames from clips of SEEDS seeds from FIRST_SEED on, each with at least one ball in play, and
    with PUTTER a putter head in view as well."""
    per_seed = frames // seeds
    for seed in range(first_seed, first_seed + seeds):
        script, renderer, timeline = build_clip(replace(look, seed=seed, putts=6))
        fps = script.scene.fps
        candidates = [
            f
            for f in range(int(script.duration * fps))
            if timeline.balls(f / fps)
            and (not putter or any(o.kind == "putter" for o, _ in timeline.occluders(f / fps)))
        ]
        if not candidates:
            continue
        rng = np.random.default_rng(seed)
        for f in sorted(rng.choice(candidates, size=min(per_seed, len(candidates)), replace=False)):
            t = f / fps
            balls, occluders = timeline.balls(t), timeline.occluders(t)
            image = renderer.render(t, balls, occluders).copy()
            yield SampledFrame(seed, int(f), image, script.scene, renderer.extras, balls, occluders)


class CropDetectors:
    """A detector of MODEL for each rig crop the clips ask for, opened once."""

    def __init__(self, model: Path, confidence: float = DEFAULT_CONFIDENCE) -> None:
        self._model = model
        self._confidence = confidence
        self._open: dict[tuple[int, int, int, int], BallDetector] = {}

    def detect(self, sampled: SampledFrame) -> list[Detection]:
        bounds = sampled.scene.calibration.bounds()
        detector = self._open.get(bounds) or BallDetector.open(
            detector_config(self._model, confidence=self._confidence, crop=bounds)
        )
        self._open[bounds] = detector
        t = sampled.index / sampled.scene.fps
        return list(detector.detect(Frame(sampled.index, t, sampled.image)).items)


def score_frame(score: Score, sampled: SampledFrame, found: list[Box]) -> list[Box]:
    """Add one frame to SCORE as the simulator rows count it; returns its false alarms."""
    cal = sampled.scene.calibration
    counted = [b.box for b in sampled.balls if not b.occluded and watched(cal, b.box)]
    ignored = [b.box for b in sampled.balls if b.occluded or not watched(cal, b.box)]
    outside = [box for box in found if not watched(cal, box)]
    return score.add(counted, ignored, found, outside)


def simulator_scores(
    model: Path, frames: int, seeds: int, first_seed: int = 7000, look: ClipSpec = PLAIN_CLIPS
) -> dict[str, Score]:
    """Scores over all balls, and over resting and rolling balls alone (false alarms count in "all" only)."""
    detectors = CropDetectors(model)
    scores = {"all": Score(), "resting": Score(recall_only=True), "rolling": Score(recall_only=True)}
    for sampled in sampled_frames(frames, seeds, first_seed, look):
        found = [d.box for d in detectors.detect(sampled)]
        score_frame(scores["all"], sampled, found)
        cal = sampled.scene.calibration
        counted = [b for b in sampled.balls if not b.occluded and watched(cal, b.box)]
        for name, rolling in (("resting", False), ("rolling", True)):
            part = [b.box for b in counted if (b.state.speed > 0) == rolling]
            scores[name].add(part, [], found, found)
    return scores


# Balls in plain view that the dataset's labels leave out, so that finding one is not a false positive: in
# 1_Color two white balls lie on the mat and only the right-hand one is labelled.
REAL_UNLABELLED: dict[str, tuple[Box, ...]] = {
    "1_Color_png.rf.a388cd6b770ad4086cfefd59a5302589": (Box(380.0, 329.0, 402.0, 351.0),),
}


def real_score(model: Path) -> tuple[Score, int]:
    _, held = real_split(5)
    detector = BallDetector.open(detector_config(model, confidence=DEFAULT_CONFIDENCE))
    score = Score()
    for path in held:
        image = cv2.imread(str(path))
        if image is None:
            raise OSError(f"cannot read {path}")
        height, width = image.shape[:2]
        truth = [
            label_box(label) for label in read_labels(REAL / "labels" / f"{path.stem}.txt", width, height)
        ]
        truth.extend(REAL_UNLABELLED.get(path.stem, ()))
        found = [d.box for d in detector.detect(Frame(0, 0.0, image)).items]
        score.add(truth, [], found)
    return score, len(held)


def real_pasted_score(model: Path) -> tuple[Score, int]:
    """The held-out real images with balls cut from them laid on their white tables: the balls and the
    tables are both unseen. Their own balls count too; a detection that matches no ball is a false alarm."""
    _, held = real_split(5)
    detector = BallDetector.open(detector_config(model, confidence=DEFAULT_CONFIDENCE))
    score = Score()
    copies = 0
    for copy in pasted_copies(held, REAL / "labels", PASTED_VARIANTS, PASTED_SEED):
        truth = [label_box(label) for label in copy.labels]
        truth.extend(REAL_UNLABELLED.get(copy.source.stem, ()))
        found = [d.box for d in detector.detect(Frame(0, 0.0, copy.image)).items]
        score.add(truth, [], found)
        copies += 1
    return score, copies


@dataclass(frozen=True, slots=True)
class Target:
    """What a row must reach: recall and precision at least, median centre error at most."""

    recall: float
    precision: float | None
    error: float

    def misses(self, score: Score) -> list[str]:
        """The measures of SCORE that miss this target."""
        missed = []
        if score.recall() < self.recall:
            missed.append("recall")
        if self.precision is not None and score.precision() < self.precision:
            missed.append("precision")
        if score.error() > self.error:
            missed.append("centre error")
        return missed


SIM_TARGET = Target(0.99, 0.99, 1.0)
ROLLING_TARGET = Target(0.97, None, 1.0)
REAL_TARGET = Target(0.95, 0.95, 1.0)


def all_scores(
    model: Path, frames: int, seeds: int, footage: tuple[Path, ...] = ()
) -> dict[str, tuple[Score, int, Target | None]]:
    """Every row of the table for one model: its score, frames and target."""
    rows: dict[str, tuple[Score, int, Target | None]] = {}
    for name, (first_seed, look) in ROW_SETS.items():
        scores = simulator_scores(model, frames, seeds, first_seed, look)
        rows[f"{name}, unseen seeds ({seeds})"] = (scores["all"], frames, SIM_TARGET)
        rows[f"{name}: resting balls"] = (scores["resting"], frames, None)
        rows[f"{name}: rolling balls"] = (scores["rolling"], frames, ROLLING_TARGET)
    real, real_frames = real_score(model)
    rows["real images, held out"] = (real, real_frames, REAL_TARGET)
    rows["real, held out, balls on the table"] = (*real_pasted_score(model), None)
    for folder in footage:
        rows[row_name(folder)] = (*footage_score(model, folder), REAL_TARGET)
    return rows


def cell(score: Score, target: Target | None) -> str:
    """Recall, precision, centre error; a * after each that misses the row's target."""
    missed = target.misses(score) if target is not None else []
    recall = f"{score.recall():.4f}" + ("*" if "recall" in missed else " ")
    precision = "-     " if score.recall_only else f"{score.precision():.4f}"
    precision += "*" if "precision" in missed else " "
    error = f"{score.error():.2f}" + ("*" if "centre error" in missed else " ")
    return f"{recall} {precision} {error:>6}"


def compare(first: Score, other: Score) -> tuple[int, int]:
    """How many of recall, precision and centre error OTHER does better and worse on than FIRST."""
    pairs = [(other.recall(), first.recall()), (first.error(), other.error())]
    if not first.recall_only:
        pairs.append((other.precision(), first.precision()))
    return sum(a > b for a, b in pairs), sum(a < b for a, b in pairs)


def print_table(models: list[Path], results: list[dict[str, tuple[Score, int, Target | None]]]) -> None:
    """One table: a row per set, the models side by side."""
    width = 22
    print("detector accuracy at the daemon's default confidence; a ball is found at IoU >= 0.5")
    print(f"{'':38} {'':>6} " + " ".join(f"{m.parent.name + '/' + m.name:>{width}}"[-width:] for m in models))
    print(f"{'set':38} {'balls':>6} " + " ".join(f"{'recall prec.  err px':>{width}}" for _ in models))
    for name, (score, _, target) in results[0].items():
        cells = " ".join(f"{cell(r[name][0], target):>{width}}" for r in results)
        print(f"{name:38} {score.truths:6d} {cells}")
    print(
        "targets: each simulator set recall and precision >= 0.99, its rolling balls recall >= 0.97; real "
        "images and footage recall and precision >= 0.95; median centre error <= 1 px; * marks a miss"
    )
    for model, result in zip(models, results, strict=True):
        missed = sum(len(t.misses(s)) for s, _, t in result.values() if t is not None)
        line = f"{model}: {missed} target measures missed"
        if result is not results[0]:
            better = worse = 0
            for name, (score, _, _) in result.items():
                up, down = compare(results[0][name][0], score)
                better, worse = better + up, worse + down
            line += f"; against {models[0]}: better on {better} measures, worse on {worse}"
        print(line)


def add_sample_options(parser: argparse.ArgumentParser) -> None:
    """--frames and --seeds: how many simulator frames each set has, from how many clips."""
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help=f"frames a set ({DEFAULT_FRAMES})")
    parser.add_argument(
        "--seeds", type=int, default=DEFAULT_SEEDS, help=f"clips a set, 1 to {MAX_SEEDS} ({DEFAULT_SEEDS})"
    )


def check_sample(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit with a usage error when --seeds or --frames cannot make the sets."""
    if not 1 <= args.seeds <= MAX_SEEDS:
        parser.error(f"--seeds must be 1 to {MAX_SEEDS}, not {args.seeds}")
    if args.frames < args.seeds:
        parser.error(f"--frames must be at least --seeds ({args.seeds}), not {args.frames}")


def refuse_unloadable(parser: argparse.ArgumentParser, models: list[Path]) -> None:
    """Exit with a usage error naming the first of MODELS that does not load: in one line at the start, not
    as a traceback after minutes of the models before it."""
    for model in models:
        try:
            BallDetector.open(detector_config(model)).close()
        except ModelError as error:
            parser.error(f"--model: {error}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, nargs="+", default=[REPO / "models" / "ball.onnx"],
        help="models side by side; the others are compared with the first",
    )  # fmt: skip
    add_sample_options(parser)
    parser.add_argument(
        "--footage", type=Path, action="append", default=[],
        help="a folder of labelled box footage held out from training (bench/footage.py), a row of its own; "
        "may be given more than once",
    )  # fmt: skip
    args = parser.parse_args()
    check_sample(parser, args)
    refuse_unloadable(parser, args.model)
    for folder in args.footage:
        if (reason := check_footage(folder, args.model)) is not None:
            parser.error(f"--footage {reason}")
    names = [row_name(folder) for folder in args.footage]
    for name in sorted({n for n in names if names.count(n) > 1}):
        # One row would silently take the other's place.
        parser.error(f"two --footage folders make the same row, {name!r}: rename one")
    cv2.setNumThreads(1)
    footage = tuple(args.footage)
    print_table(args.model, [all_scores(model, args.frames, args.seeds, footage) for model in args.model])
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
