"""Detector speed: one table, same frames, same run, at 1 and 2 threads.

Rows: ONNX Runtime `session.run` on a prepared tensor (the floor), our detector end to end (BGR frame in,
boxes out), Ultralytics `predict` on the .pt and on the .onnx at the same size, and the Proof of Putt way
(`YOLO(best.pt)(frame)`: full frame, default arguments). Each row is timed in several runs; the table gives
the median of the runs' medians and the p95 of all calls. Target: our pre- and post-processing add at most 5%
to the floor. Needs the `export` extra. Without --model/--weights it builds and exports an untrained YOLOv8n
(one class, 'ball'): the speed is real even though the boxes are not.

    .venv/bin/python -m bench.detector_speed [--model models/ball.onnx --weights best.pt]
        [--int8 ball.int8.onnx] [--verifier models/ball_verifier.onnx] [--frames 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from daemon.cli import build_parser
from daemon.closed_pipe import run_main
from daemon.commands.export import export_command, synthetic_frames
from daemon.models import Frame, Image
from daemon.vision.detector import BallDetector, DetectorConfig

THREADS = (1, 2)
WARMUP = 5


def build_default(folder: Path, imgsz: int) -> tuple[Path, Path]:
    """An untrained one-class YOLOv8n checkpoint and its verified export."""
    import ultralytics  # noqa: PLC0415  # the export extra, only when asked to build
    import yaml  # noqa: PLC0415
    from ultralytics import YOLO  # noqa: PLC0415

    spec = yaml.safe_load((Path(ultralytics.__file__).parent / "cfg/models/v8/yolov8.yaml").read_text())
    spec |= {"nc": 1, "scales": {"n": [0.33, 0.25, 1024]}}
    spec_path = folder / "bench.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    model = YOLO(str(spec_path))
    model.model.names = {0: "ball"}
    weights = folder / "best.pt"
    model.save(str(weights))
    args = build_parser().parse_args(["export", str(weights), "--imgsz", str(imgsz), "--out", str(folder)])
    if export_command(args) != 0:
        raise SystemExit("bench: could not export the default model")
    return weights, folder / "ball.onnx"


def timed(call: Callable[[Image], object], frames: list[Image], count: int) -> list[float]:
    """Milliseconds per call over COUNT calls cycling through FRAMES, after a warm-up."""
    for image in frames[:WARMUP]:
        call(image)
    times: list[float] = []
    for i in range(count):
        image = frames[i % len(frames)]
        start = time.perf_counter()
        call(image)
        times.append((time.perf_counter() - start) * 1000)
    return times


def timed_pair(
    first: Callable[[Image], object], second: Callable[[Image], object], frames: list[Image], count: int
) -> tuple[list[float], list[float]]:
    """Like `timed` for two calls, alternating them on each frame."""
    times = timed(first, frames, 0), timed(second, frames, 0)  # warm-up only
    for i in range(count):
        for call, bucket in zip((first, second), times, strict=True):
            start = time.perf_counter()
            call(frames[i % len(frames)])
            bucket.append((time.perf_counter() - start) * 1000)
    return times


def rows_for(threads: int, args: argparse.Namespace, frames: list[Image]) -> dict[str, list[float]]:
    """Every row's timings at THREADS threads."""
    import torch  # noqa: PLC0415
    from ultralytics import YOLO  # noqa: PLC0415

    torch.set_num_threads(threads)
    config = DetectorConfig(args.model, imgsz=None, confidence=args.confidence, threads=threads)
    detector = BallDetector.open(config)
    imgsz = detector.info.imgsz[0]
    detector.prepare(frames[0])
    # The floor runs the detector's own session: a second one would spin its own threads against it.
    session, feed = detector.session, {detector.input_name: detector.tensor.copy()}
    pt, onnx_model, pop = (
        YOLO(str(args.weights)),
        YOLO(str(args.model), task="detect"),
        YOLO(str(args.weights)),
    )
    kwargs: dict[str, Any] = {"imgsz": imgsz, "conf": args.confidence, "verbose": False}
    index = iter(range(10**9))
    # The floor and our detector alternate frame by frame, so drift in the machine's speed hits both alike.
    floor, ours = timed_pair(
        lambda _: session.run(None, feed),
        lambda im: detector.detect(Frame(next(index), 0.0, im)),
        frames,
        args.frames,
    )
    results = {
        "onnxruntime session.run (floor)": floor,
        "ours end to end (frame -> boxes)": ours,
        "ultralytics YOLO(best.pt).predict": timed(lambda im: pt.predict(im, **kwargs), frames, args.frames),
        "ultralytics YOLO(ball.onnx).predict*": timed(
            lambda im: onnx_model.predict(im, **kwargs), frames, args.frames
        ),
        "Proof of Putt: YOLO(best.pt)(frame)": timed(lambda im: pop(im, verbose=False), frames, args.frames),
    }
    if args.verifier is not None:
        verified = BallDetector.open(replace(config, verifier=args.verifier))
        results["ours end to end, with the verifier"] = timed(
            lambda im: verified.detect(Frame(next(index), 0.0, im)), frames, args.frames
        )
        verified.close()
    detector.close()
    if args.int8 is not None:
        int8 = BallDetector.open(DetectorConfig(args.int8, confidence=args.confidence, threads=threads))
        results["ours end to end, INT8 model"] = timed(
            lambda im: int8.detect(Frame(next(index), 0.0, im)), frames, args.frames
        )
        int8.close()
    return results


def p95(values: list[float]) -> float:
    """The 95th percentile."""
    return float(np.percentile(values, 95))


def print_table(table: dict[int, list[dict[str, list[float]]]], frames: int, imgsz: int) -> None:
    """One table: rows by method, columns median / p95 / x floor per thread count."""
    names = list(table[THREADS[0]][0])
    head = f"{'':38}" + "".join(f"{f'threads={t}: median  p95  x floor':>36}" for t in THREADS)
    runs = len(table[THREADS[0]])
    print(f"detector speed, {runs} runs x {frames} frames 640x480, imgsz {imgsz}, ms per frame")
    print(head)

    def median_of_runs(threads: int, name: str) -> float:
        return statistics.median(statistics.median(run[name]) for run in table[threads])

    for name in names:
        cells = ""
        for threads in THREADS:
            median, floor = median_of_runs(threads, name), median_of_runs(threads, names[0])
            pooled = [v for run in table[threads] for v in run[name]]
            cells += f"{median:>21.2f} {p95(pooled):>5.2f} {median / floor:>7.3f}"
        print(f"{name:38}{cells}")
    print(
        "* Ultralytics builds its own ONNX Runtime session with default threads (all cores) in both columns."
    )


def main() -> None:
    """Run the benchmark and print the table."""
    os.environ["YOLO_OFFLINE"] = "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", type=Path, default=None, help="exported .onnx (default: build one)")
    parser.add_argument("--weights", type=Path, default=None, help="the .pt it came from")
    parser.add_argument("--int8", type=Path, default=None, help="an INT8 export to time beside it")
    parser.add_argument("--verifier", type=Path, default=None, help="a verifier to time after the model")
    parser.add_argument("--frames", type=int, default=200, help="timed calls per row (default 200)")
    parser.add_argument("--runs", type=int, default=3, help="runs per row (default 3)")
    parser.add_argument("--imgsz", type=int, default=320, help="size when building the default model")
    parser.add_argument("--confidence", type=float, default=0.45, help="confidence threshold (default 0.45)")
    args = parser.parse_args()
    frames = synthetic_frames(20, seed=1)
    with tempfile.TemporaryDirectory(prefix="putt-bench-") as tmp:
        if args.model is None or args.weights is None:
            args.weights, args.model = build_default(Path(tmp), args.imgsz)
        table = {t: [rows_for(t, args, frames) for _ in range(args.runs)] for t in THREADS}
        imgsz = BallDetector.open(DetectorConfig(args.model)).info.imgsz[0]
    print_table(table, args.frames, imgsz)


if __name__ == "__main__":
    raise SystemExit(run_main(main))
