"""Simulator rendering speed at 640x480 on one core: median and p95 ms per frame, frames/s, x real time.

.venv/bin/python -m bench.sim_speed [--frames 600] [--runs 5]

One row per kind of scene, measured in the same run: the plain top-down rig (the baseline), the rig seen by a
camera at the golfer's end, and the rig with every harder look of `daemon.sim.realism` on.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import cv2
import numpy as np

from daemon.closed_pipe import run_main
from daemon.sim.clip import ClipSpec, build_clip
from daemon.sim.perspective import CameraChoice
from daemon.sim.realism import Realism

KINDS = {
    "top-down (baseline)": ClipSpec(putts=6),
    "oblique camera": ClipSpec(putts=6, camera=CameraChoice("oblique")),
    "every harder look": ClipSpec(putts=6, realism=Realism.every(1.0)),
}


def one_run(frames: int, spec: ClipSpec) -> list[float]:
    script, renderer, timeline = build_clip(spec)
    fps = script.scene.fps
    times = []
    for f in range(frames):
        t = f / fps + 2.0  # start as the first putt is set up, so balls and occluders are drawn
        start = time.perf_counter()
        renderer.render(t, timeline.balls(t), timeline.occluders(t))
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    results: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in KINDS}
    for run in range(args.runs):
        for name, spec in KINDS.items():  # interleaved, so a busy moment slows every kind alike
            times = one_run(args.frames, replace(spec, seed=run))
            results[name][0].append(statistics.median(times))
            results[name][1].append(float(np.percentile(times, 95)))
    print(
        f"simulator rendering, 640x480, 1 thread, {args.runs} runs of {args.frames} frames (median of runs)"
    )
    header = f"{'median ms/frame':>16} {'p95 ms/frame':>13} {'frames/s':>9} {'x real time (30 fps)':>21}"
    print(f"{'scene':22} {header}")
    for name, (medians, p95s) in results.items():
        median, p95 = statistics.median(medians), statistics.median(p95s)
        print(f"{name:22} {median:16.2f} {p95:13.2f} {1000 / median:9.0f} {1000 / median / 30:21.1f}")
    print("target: >= 90 frames/s (3x real time)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
