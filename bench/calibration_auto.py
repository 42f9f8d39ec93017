"""How close the automatic calibration proposal comes to the truth on unseen simulated rigs.

    .venv/bin/python -m bench.calibration_auto [--seeds 50] [--putts 20] [--camera top|tilted|oblique]

For each seed (7000 up: never a training seed) one empty frame of the rig is rendered and handed to
`propose`. Printed: the mean IoU of every clicked region with the simulator's own calibration, the share of
seeds at IoU >= 0.85 for the mat, ramp and hole (target 90%), and the share of seeds where the proposal names
a simulated session's putts as well as the true calibration does. The session is classified from the
simulator's ball positions (no detector), so the comparison measures only the calibration. `--camera` sees
the rigs with the simulator's perspective cameras instead of straight from above (the proposal fits a flat,
overhead view: this measures how far that carries).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from daemon.closed_pipe import run_main
from daemon.models import BallObservation, Box, Image, Point, TrackedBall
from daemon.sim.clip import ClipSpec, build_clip
from daemon.sim.perspective import FLAT, CameraChoice
from daemon.sim.render import Renderer
from daemon.sim.rig import make_scene
from daemon.sim.script import ClipScript
from daemon.sim.truth import Timeline
from daemon.vision.calibration import CLICKED, Calibration, Polygon, Region
from daemon.vision.classifier import ClassifierConfig, PuttClassifier
from daemon.vision.proposal import propose

FIRST_SEED = 7000
TARGET_REGIONS = (Region.MAT, Region.RAMP, Region.HOLE)
GOOD_IOU = 0.85
PointMap = Callable[[float, float], tuple[float, float]]
CAMERAS = {"top": FLAT, "tilted": CameraChoice("top", 10.0), "oblique": CameraChoice("oblique")}


def empty_frame(seed: int, camera: CameraChoice = FLAT) -> tuple[Image, Calibration]:
    """One frame of the seed's rig with no ball on it, and the simulator's calibration of it."""
    scene = make_scene(seed, camera=camera)
    return Renderer(scene, seed).render(0.0, [], []).copy(), scene.calibration


def iou(a: Polygon, b: Polygon, width: int, height: int) -> float:
    """Intersection over union of two polygons, rasterised at frame resolution."""
    first, second = np.zeros((height, width), np.uint8), np.zeros((height, width), np.uint8)
    cv2.fillPoly(first, [np.array(a, np.int32)], 1)
    cv2.fillPoly(second, [np.array(b, np.int32)], 1)
    union = int(np.count_nonzero(first | second))
    return int(np.count_nonzero(first & second)) / union if union else 0.0


@dataclass(frozen=True, slots=True)
class SessionScript:
    """A scripted session and where its balls are, frame by frame."""

    script: ClipScript
    timeline: Timeline


def session_script(seed: int, putts: int, camera: CameraChoice = FLAT) -> SessionScript:
    """One session of PUTTS putts on the seed's rig."""
    script, _, timeline = build_clip(ClipSpec(seed=seed, sessions=1, putts=putts, camera=camera))
    return SessionScript(script, timeline)


def classify(session: SessionScript, calibration: Calibration, moved: PointMap | None = None) -> list[str]:
    """The detailed string found for each scripted putt ("" when none), from the true ball positions; MOVED
    maps a position when the camera was moved after calibrating."""
    classifier = PuttClassifier(calibration, ClassifierConfig())
    fps = session.script.scene.fps
    found: list[tuple[float, str]] = []
    for index in range(int(session.script.duration * fps)):
        t = index / fps
        balls = []
        for view in session.timeline.balls(t):
            if view.occluded:
                continue
            x, y = view.box.center.x, view.box.center.y
            if moved is not None:
                x, y = moved(x, y)
            r = (view.box.x2 - view.box.x1) / 2
            balls.append(
                TrackedBall(view.ball_id, Point(x, y), Point(0, 0), Box(x - r, y - r, x + r, y + r), 0)
            )
        events = classifier.update(BallObservation(index, t, tuple(balls)))
        found += [(e.start_time, e.detail) for e in events]
    found += [(e.start_time, e.detail) for e in classifier.flush(session.script.duration)]
    details, used = [], set()
    for putt in session.script.putts:
        lo, hi = putt.start_time - 0.5, putt.last_frame / fps + 4.0
        match = next((i for i, (t, _) in enumerate(found) if i not in used and lo <= t <= hi), None)
        if match is not None:
            used.add(match)
        details.append(found[match][1] if match is not None else "")
    return details


def right(session: SessionScript, details: list[str]) -> int:
    """How many putts got their expected detailed string."""
    return sum(p.detail == d for p, d in zip(session.script.putts, details, strict=True))


@dataclass
class SeedResult:
    seed: int
    ious: dict[Region, float]
    truth_right: int
    proposal_right: int
    putts: int
    seconds: float


def run_seed(seed: int, putts: int, camera: CameraChoice = FLAT) -> SeedResult:
    image, truth = empty_frame(seed, camera)
    height, width = image.shape[:2]
    start = time.process_time()
    proposal = propose(image)
    seconds = time.process_time() - start
    session = session_script(seed, putts, camera)
    truth_right = right(session, classify(session, truth))
    if proposal is None:
        return SeedResult(
            seed, dict.fromkeys(CLICKED, 0.0), truth_right, 0, len(session.script.putts), seconds
        )
    found = proposal.calibration
    ious = {r: iou(found.polygons[r], truth.polygons[r], width, height) for r in CLICKED}
    proposal_right = right(session, classify(session, found))
    return SeedResult(seed, ious, truth_right, proposal_right, len(session.script.putts), seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--putts", type=int, default=20)
    parser.add_argument("--camera", choices=sorted(CAMERAS), default="top")
    args = parser.parse_args()
    seeds = range(FIRST_SEED, FIRST_SEED + args.seeds)
    results = [run_seed(seed, args.putts, CAMERAS[args.camera]) for seed in seeds]
    n = len(results)
    print(f"calibration proposal: {n} unseen simulated rigs (seeds {seeds.start}-{seeds.stop - 1}), 640x480, "
          f"camera {args.camera}, one empty frame each")  # fmt: skip
    print(f"{'region':18} {'mean IoU':>9} {'min IoU':>8} {'IoU>=0.85':>10}")
    for region in CLICKED:
        values = [r.ious[region] for r in results]
        good = 100 * sum(v >= GOOD_IOU for v in values) / n
        target = "  (target 90%)" if region in TARGET_REGIONS else ""
        print(f"{region.value:18} {np.mean(values):9.3f} {min(values):8.3f} {good:9.0f}%{target}")
    all_good = sum(all(r.ious[g] >= GOOD_IOU for g in TARGET_REGIONS) for r in results)
    print(f"seeds with mat, ramp and hole all >= 0.85: {all_good}/{n} = {100 * all_good / n:.0f}%")
    as_good = sum(r.proposal_right >= r.truth_right for r in results)
    putts = sum(r.putts for r in results)
    print(f"seeds whose session ({args.putts} putts, true ball positions) the proposal classifies as well as "
          f"the true calibration: {as_good}/{n} = {100 * as_good / n:.0f}%")  # fmt: skip
    print(f"detailed strings right: true calibration {sum(r.truth_right for r in results)}/{putts}, "
          f"proposal {sum(r.proposal_right for r in results)}/{putts}")  # fmt: skip
    print(f"proposal CPU time per frame: median {np.median([r.seconds for r in results]):.2f} s")
    for r in results:
        bad = [f"{g.value} {r.ious[g]:.2f}" for g in TARGET_REGIONS if r.ious[g] < GOOD_IOU]
        if bad or r.proposal_right < r.truth_right:
            print(f"  seed {r.seed}: {', '.join(bad) or 'regions fine'}; putts right {r.proposal_right} "
                  f"(true calibration {r.truth_right})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
