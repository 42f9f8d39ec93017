"""Drift detection on simulated rigs: a moved camera is noticed and followed, a still one raises nothing.

    .venv/bin/python -m bench.calibration_drift [--seeds 10] [--putts 20] [--still-every 10]

For each seed (7000 up, never a training seed) the scene reference is taken from one empty frame. Then:
- moved: later frames warped as if the camera were knocked (shifts 5-60 px, rotations up to 3 degrees, zoom
  5%); each must be judged `followed`, and a session whose ball positions move the same way is classified with
  the followed calibration (true ball positions, no detector) and compared with the unmoved session, and with
  the stale calibration left where it was;
- still: one frame every STILL_EVERY seconds over an hour (lighting drift, flicker and sensor noise); none may
  be judged anything but `still`;
- foreign: the calibration and reference of another seed's rig on this seed's frame must be `mismatch`, with
  the reference and without it (the proposal check).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from bench.calibration_auto import FIRST_SEED, classify, right, session_script
from daemon.closed_pipe import run_main
from daemon.models import Image
from daemon.sim.render import Renderer
from daemon.sim.rig import make_scene
from daemon.vision.drift import DriftConfig, estimate_drift, judge, make_reference, transform_calibration

# (dx, dy, degrees, zoom): the moves a knocked camera makes.
MOVES = (
    (5, 0, 0.0, 1.0), (0, -8, 0.5, 1.0), (15, 10, -1.0, 1.0), (-25, 20, 1.5, 1.0), (40, -30, -2.0, 1.0),
    (60, 0, 0.0, 1.0), (-45, -40, 3.0, 1.0), (20, 35, -3.0, 1.05), (-30, 15, 2.0, 0.95), (0, 0, 0.0, 1.05),
)  # fmt: skip


def camera_move(
    dx: float, dy: float, degrees: float, zoom: float, size: tuple[int, int]
) -> npt.NDArray[np.float64]:
    """The 2x3 pixel map of a camera knocked by a shift, a turn about the frame centre and a zoom."""
    matrix = cv2.getRotationMatrix2D((size[0] / 2, size[1] / 2), degrees, zoom)
    matrix[:, 2] += (dx, dy)
    moved: npt.NDArray[np.float64] = matrix
    return moved


def warp(image: Image, matrix: npt.NDArray[np.float64]) -> Image:
    moved: Image = cv2.warpAffine(
        image, matrix, (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_REFLECT
    )
    return moved


@dataclass
class SeedDrift:
    seed: int
    verdicts: Counter[str]
    unmoved_right: int
    followed_right: int
    stale_right: int
    moved_putts: int
    putts: int
    still_checks: int
    still_false: int
    foreign: list[str]
    own_without_reference: str  # this rig's own calibration checked by the proposal alone
    proposal_seconds: float
    worst_error: float  # pixels between the followed calibration's corners and the true moved ones
    seconds: list[float]


def run_seed(seed: int, putts: int, still_every: float) -> SeedDrift:
    scene = make_scene(seed)
    renderer = Renderer(scene, seed)
    size = (scene.width, scene.height)
    truth = scene.calibration
    reference = make_reference(renderer.render(0.0, [], []).copy(), truth)
    config = DriftConfig()
    session = session_script(seed, putts)
    unmoved = right(session, classify(session, truth))
    verdicts: Counter[str] = Counter()
    followed_right = stale_right = 0
    worst = 0.0
    seconds = []
    for k, (dx, dy, degrees, zoom) in enumerate(MOVES):
        matrix = camera_move(dx, dy, degrees, zoom, size)
        frame = warp(renderer.render(60.0 + 7 * k, [], []).copy(), matrix)
        start = time.process_time()
        estimate = estimate_drift(frame, truth, reference)
        seconds.append(time.process_time() - start)
        verdict = judge(estimate, config, size)
        verdicts[verdict.state] += 1

        def moved(x: float, y: float, m: npt.NDArray[np.float64] = matrix) -> tuple[float, float]:
            return float(m[0, 0] * x + m[0, 1] * y + m[0, 2]), float(m[1, 0] * x + m[1, 1] * y + m[1, 2])

        stale_right += right(session, classify(session, truth, moved))
        if verdict.state != "followed" or estimate is None:
            continue
        followed = transform_calibration(truth, estimate.matrix)
        expected = transform_calibration(truth, ((*matrix[0],), (*matrix[1],)))
        for region, polygon in followed.polygons.items():
            error = np.abs(np.array(polygon, float) - np.array(expected.polygons[region], float)).max()
            worst = max(worst, float(error))
        followed_right += right(session, classify(session, followed, moved))
    still_checks = still_false = 0
    for t in np.arange(still_every, 3600.0 + still_every / 2, still_every):
        still_checks += 1
        verdict = judge(
            estimate_drift(renderer.render(float(t), [], []).copy(), truth, reference), config, size
        )
        still_false += verdict.state != "still"
    other = make_scene(seed + 500)
    other_reference = make_reference(
        Renderer(other, seed + 500).render(0.0, [], []).copy(), other.calibration
    )
    frame = renderer.render(30.0, [], []).copy()
    foreign: list[str] = [
        judge(estimate_drift(frame, other.calibration, other_reference), config, size).state,
        judge(estimate_drift(frame, other.calibration, None), config, size).state,
    ]
    start = time.process_time()
    own = judge(estimate_drift(frame, truth, None), config, size).state
    proposal_seconds = time.process_time() - start
    n = len(session.script.putts)
    return SeedDrift(seed, verdicts, unmoved, followed_right, stale_right, n * len(MOVES), n, still_checks,
                     still_false, foreign, own, proposal_seconds, worst, seconds)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--putts", type=int, default=20)
    parser.add_argument("--still-every", type=float, default=10.0, help="seconds between still checks")
    args = parser.parse_args()
    seeds = range(FIRST_SEED, FIRST_SEED + args.seeds)
    results = [run_seed(seed, args.putts, args.still_every) for seed in seeds]
    moves = len(MOVES) * len(results)
    followed = sum(r.verdicts["followed"] for r in results)
    unmoved = sum(r.unmoved_right for r in results) / sum(r.putts for r in results)
    moved_putts = sum(r.moved_putts for r in results)
    follow_acc = sum(r.followed_right for r in results) / moved_putts
    stale_acc = sum(r.stale_right for r in results) / moved_putts
    still = sum(r.still_checks for r in results)
    false = sum(r.still_false for r in results)
    print(f"calibration drift: {len(results)} simulated rigs (seeds {seeds.start}-{seeds.stop - 1}), "
          f"640x480, {len(MOVES)} camera moves each (shift 5-60 px, rotation <= 3 deg, zoom 5%)")  # fmt: skip
    print(f"{'check':44} {'result':>22}")
    print(f"{'moved camera judged followed':44} {followed:>10}/{moves} = {100 * followed / moves:5.1f}%")
    print(f"{'worst corner error of followed regions (px)':44} {max(r.worst_error for r in results):22.1f}")
    print(f"{'putt detail right, camera unmoved':44} {100 * unmoved:21.2f}%")
    print(f"{'putt detail right, moved and followed':44} {100 * follow_acc:21.2f}%  (target: within 1 point)")
    print(f"{'putt detail right, moved, regions left stale':44} {100 * stale_acc:21.2f}%")
    calm = still - false
    print(f"{'still frames over an hour judged still':44} {calm:>10}/{still} = {100 * calm / still:5.1f}%")
    with_ref = sum(r.foreign[0] == "mismatch" for r in results)
    without = sum(r.foreign[1] == "mismatch" for r in results)
    print(f"{'other rig, with its reference: mismatch':44} {with_ref:>14}/{len(results)}")
    print(f"{'other rig, no reference (proposal): mismatch':44} {without:>14}/{len(results)}")
    own = sum(r.own_without_reference == "still" for r in results)
    print(f"{'own rig, no reference (proposal): still':44} {own:>14}/{len(results)}")
    median = np.median([s for r in results for s in r.seconds])
    print(f"{'estimate CPU time per check (median, s)':44} {median:22.3f}")
    proposal_median = np.median([r.proposal_seconds for r in results])
    print(f"{'  without a reference (proposal near the regions)':44} {proposal_median:22.3f}")
    for r in results:
        if r.verdicts["followed"] < len(MOVES) or r.still_false or r.foreign != ["mismatch", "mismatch"]:
            verdicts = dict(r.verdicts)
            print(f"  seed {r.seed}: moves {verdicts}, false drift {r.still_false}, other rig {r.foreign}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
