"""Detector options within the time budget: the YOLO26 layout at other depths, widths and input sizes.

    YOLO_OFFLINE=1 .venv/bin/python -m bench.model_options [--runs 5] [--frames 100]

Each option is built untrained from the YOLO26 yaml (speed does not depend on the weights), exported to ONNX
with a free input size as `putt-daemon export` does, and timed as the daemon runs it: `BallDetector.detect` on
640 x 480 simulator frames of the default rig, cropped to the rig, one thread. The shipped model is timed the
same way in the same run. One table: parameters, GFLOPs at the square input, the network input the crop
becomes, the median of `--runs` medians of `--frames` frames, and whether it fits the 10 ms budget.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import onnxruntime as ort

from bench.pipeline import record_clip
from daemon.closed_pipe import run_main
from daemon.models import Frame, Image
from daemon.vision.calibration import load_calibration
from daemon.vision.detector import BallDetector, DetectorConfig
from tools.train_detector import TrainParams, model_yaml

REPO = Path(__file__).resolve().parents[1]
BUDGET_MS = 10.0
SHIPPED = REPO / "models" / "ball.onnx"


@dataclass(frozen=True, slots=True)
class Option:
    """One layout to price."""

    depth: float
    width: float
    imgsz: int

    @property
    def name(self) -> str:
        return f"yolo26 d{self.depth:g} w{self.width:g} @{self.imgsz}"


OPTIONS = (
    Option(0.33, 0.125, 320),
    Option(0.33, 0.125, 352),
    Option(0.33, 0.125, 384),
    Option(0.33, 0.125, 416),
    Option(1.0, 0.125, 320),  # depth 0.5 builds the same network as 0.33: each block repeats round(2 x depth)
    Option(1.0, 0.125, 352),
    Option(0.33, 0.1875, 320),
    Option(0.33, 0.25, 320),
)


def params_for(option: Option) -> TrainParams:
    """Training parameters that only decide the layout (the rest is unused here)."""
    return TrainParams(
        architecture=f"yolo26-d{option.depth:g}-w{option.width:g}", depth=option.depth, width=option.width,
        imgsz=option.imgsz, epochs=0, batch=0, seed=0, sim_images=0, sim_val_images=0, sim_train_seed=0,
        sim_val_seed=0, real_repeat=0, real_holdout_every=0, mosaic=0.0, crop_share=0.0, lr0=0.0,
        clip_images=0, clip_val_images=0, clip_train_seed=0, clip_val_seed=0, init_weights="",
    )  # fmt: skip


def export(option: Option, folder: Path) -> tuple[Path, float, float]:
    """An untrained model of OPTION as ONNX with a free input size; its parameters (M) and GFLOPs."""
    from ultralytics import YOLO  # noqa: PLC0415  # the export extra

    work = folder / option.name.replace(" ", "-")
    work.mkdir()
    model: Any = YOLO(str(model_yaml(work, params_for(option))))
    from ultralytics.utils.torch_utils import get_flops  # noqa: PLC0415

    parameters = sum(p.numel() for p in model.model.parameters())
    gflops = get_flops(model.model, option.imgsz)
    # Ultralytics writes a model built from a yaml into the working folder: keep it in WORK.
    with warnings.catch_warnings(), contextlib.chdir(work):
        warnings.simplefilter("ignore")
        out = model.export(format="onnx", imgsz=option.imgsz, dynamic=True, simplify=True, batch=1,
                           device="cpu", verbose=False)  # fmt: skip
    return (work / out).resolve(), parameters / 1e6, gflops


def frames_and_crop(folder: Path, count: int) -> tuple[list[Image], tuple[int, int, int, int]]:
    """COUNT frames of a busy simulator clip of the default rig and the rig's bounds in them."""
    clip = folder / "clip"
    record_clip(clip, 1)
    capture = cv2.VideoCapture(str(clip / "clip.mp4"))
    frames: list[Image] = []
    while len(frames) < count:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    calibration = load_calibration(clip / "calibration.json").scaled(frames[0].shape[1], frames[0].shape[0])
    return frames, calibration.bounds()


def time_detect(
    model: Path, crop: tuple[int, int, int, int], frames: list[Image], runs: int
) -> tuple[float, str]:
    """Median over RUNS of the median ms of one `detect`, and the network input the crop becomes."""
    height, width = frames[0].shape[:2]
    names = ast.literal_eval(ort.InferenceSession(str(model)).get_modelmeta().custom_metadata_map["names"])
    detector = BallDetector.open(DetectorConfig(model, crop=crop, ball_class=names[0]), (width, height))
    shape = detector.tensor.shape
    medians = []
    for _ in range(runs):
        times = []
        for index, image in enumerate(frames):
            start = time.perf_counter()
            detector.detect(Frame(index, 0.0, image))
            times.append((time.perf_counter() - start) * 1000)
        medians.append(statistics.median(times))
    detector.close()
    return statistics.median(medians), f"{shape[3]}x{shape[2]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--frames", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory(prefix="putt-bench-options-") as tmp:
        folder = Path(tmp)
        frames, crop = frames_and_crop(folder, args.frames)
        rows = []
        shipped_ms, shipped_input = time_detect(SHIPPED, crop, frames, args.runs)
        rows.append(("shipped models/ball.onnx (trained)", "-", "-", shipped_input, shipped_ms))
        for option in OPTIONS:
            model, parameters, gflops = export(option, folder)
            ms, network_input = time_detect(model, crop, frames, args.runs)
            rows.append((option.name, f"{parameters:.2f}", f"{gflops:.2f}", network_input, ms))
    print(f"detector options on one thread, 640x480 frames cropped to the default rig ({crop}); "
          f"median of {args.runs} runs x {args.frames} frames")  # fmt: skip
    print(
        f"{'option':36} {'params M':>8} {'GFLOPs':>7} {'input':>8} {'detect ms':>9} {'x shipped':>9}  budget"
    )
    for name, parameters_text, gflops_text, network_input, ms in rows:
        verdict = "fits" if ms <= BUDGET_MS else "over"
        ratio = ms / shipped_ms
        sizes = f"{parameters_text:>8} {gflops_text:>7} {network_input:>8}"
        print(f"{name:36} {sizes} {ms:9.2f} {ratio:9.2f}  {verdict}")
    print(f"budget: {BUDGET_MS:g} ms a detection on one thread; GFLOPs at the square input")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
