"""`putt-daemon export`: an Ultralytics detection checkpoint to a verified ONNX model plus a sidecar JSON.

Needs the `export` extra (ultralytics, onnx, onnxslim); the running daemon never imports any of it. The model
is exported into a temporary folder, then run by our own `BallDetector` and by `YOLO(weights).predict` on the
same frames; only if both find the same boxes (same count, every corner within 1 px) are OUT/NAME.onnx and
OUT/NAME.json written. `--int8` adds OUT/NAME.int8.onnx (see `daemon.commands.quantize`) and compares it
with FP32.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from daemon.atomicfile import write_atomic, write_text_atomic
from daemon.commands.arguments import check_output_folder
from daemon.errors import InputDataError, ModelError, OutputError
from daemon.models import Box, Frame, Image
from daemon.vision.detector import NMS_IOU, BallDetector, DetectorConfig, file_sha256

logger = logging.getLogger(__name__)

EX_OK, EX_FAIL, EX_USAGE, EX_DATAERR, EX_NOINPUT, EX_CANTCREAT, EX_CONFIG = 0, 1, 2, 65, 66, 73, 78
EXTRA_MODULES = ("ultralytics", "onnx", "onnxslim")
INSTALL_HINT = "putt-daemon export: needs the 'export' extra: pip install 'putt-daemon[export]'"
VERIFY_CONFIDENCE = 0.25  # Ultralytics' predict default: more boxes to compare than the daemon's threshold
TOLERANCE_PX = 1.0
VERIFY_FRAMES = 8
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
SIDECAR_VERSION = 1
DEFAULT_IMGSZ = 320


def synthetic_frames(count: int, seed: int = 0, size: tuple[int, int] = (640, 480)) -> list[Image]:
    """Green, slightly noisy mats with one to three white balls: enough to exercise a ball detector."""
    rng = np.random.default_rng(seed)
    width, height = size
    frames: list[Image] = []
    for _ in range(count):
        image = np.empty((height, width, 3), np.uint8)
        image[:] = (40, 130, 45)
        image = cv2.add(image, rng.integers(0, 25, image.shape, dtype=np.uint8))
        for _ in range(int(rng.integers(1, 4))):
            r = int(rng.integers(5, 14))
            centre = (int(rng.integers(r, width - r)), int(rng.integers(r, height - r)))
            cv2.circle(image, centre, r, (240, 242, 245), -1, cv2.LINE_AA)
        frames.append(image)
    return frames


def _simulator_frames(count: int) -> list[Image]:
    """Simulator training-style frames of seeds no training run uses, balls in view."""
    from daemon.sim.dataset import render_example  # noqa: PLC0415  # the simulator loads only when asked for

    frames: list[Image] = []
    seed = 8_000_000
    while len(frames) < count:
        image, info = render_example(seed)
        seed += 1
        if info.balls:
            frames.append(image)
    return frames


def load_frames(folder: Path | None, count: int) -> list[Image]:
    """Up to COUNT BGR images from FOLDER, else simulator frames, else synthetic ones."""
    if folder is None:
        return _simulator_frames(count)
    if not folder.is_dir():
        raise ModelError(f"--frames {folder}: not a folder")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    frames = [img for img in (cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths[:count]) if img is not None]
    if not frames:
        raise ModelError(f"--frames {folder}: no readable .jpg/.png/.bmp images")
    return frames


def match_boxes(ours: list[Box], theirs: list[Box], tolerance: float) -> int:
    """How many of OURS have a distinct partner in THEIRS with every corner within TOLERANCE pixels."""
    left = list(theirs)
    matched = 0
    for box in ours:
        for i, other in enumerate(left):
            if max(abs(box.x1 - other.x1), abs(box.y1 - other.y1), abs(box.x2 - other.x2),
                   abs(box.y2 - other.y2)) <= tolerance:  # fmt: skip
                del left[i]
                matched += 1
                break
    return matched


@dataclass(frozen=True, slots=True)
class Verdict:
    """How an exported model compared with Ultralytics on the check frames."""

    frames: int
    boxes: int
    problems: tuple[str, ...]


def verify(model: Any, detector: BallDetector, frames: list[Image], *, end2end: bool = False) -> Verdict:
    """Compare DETECTOR with Ultralytics MODEL (a `YOLO`) frame by frame.

    For an end-to-end export, Ultralytics must predict with the same one-to-one head: its predictor picks the
    head from the `nms` argument (False selects one-to-one), whatever flag the checkpoint was saved with.
    """
    head = {"nms": False} if end2end else {}
    info = detector.info
    problems: list[str] = []
    total = 0
    for index, image in enumerate(frames):
        ours = [d.box for d in detector.detect(Frame(index, 0.0, image)).items]
        result = model.predict(
            image, imgsz=info.imgsz[0], conf=detector.config.confidence, iou=NMS_IOU, max_det=300,
            classes=[info.ball_id], rect=info.dynamic, device="cpu", verbose=False, **head,
        )[0]  # fmt: skip
        theirs = [Box(*map(float, row)) for row in result.boxes.xyxy.cpu().numpy().tolist()]
        total += len(theirs)
        if len(ours) != len(theirs):
            problems.append(f"frame {index}: {len(ours)} boxes, Ultralytics finds {len(theirs)}")
        elif match_boxes(ours, theirs, TOLERANCE_PX) != len(ours):
            problems.append(f"frame {index}: boxes differ from Ultralytics' by more than {TOLERANCE_PX:g} px")
    return Verdict(len(frames), total, tuple(problems))


def _training_meta(weights: Path) -> dict[str, Any] | None:
    """The `training` parameters the training script left in train_meta.json next to the weights."""
    path = weights.parent / "train_meta.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    training = data.get("training", data)
    return training if isinstance(training, dict) else None


def _ball_class(names: dict[int, str]) -> str:
    for candidate in ("ball", "sports ball"):
        if candidate in names.values():
            return candidate
    return names[min(names)]


def _has_one2one_head(model: Any) -> bool:
    """Whether the checkpoint has an NMS-free one-to-one head (YOLO26, YOLOv10 style)."""
    head = model.model.model[-1]
    return getattr(head, "one2one_cv2", None) is not None


def _trained_imgsz(model: Any) -> int:
    """The input size the checkpoint was trained at, else 320: a model runs best at the size it learned."""
    train_args = (getattr(model, "ckpt", None) or {}).get("train_args") or {}
    imgsz = train_args.get("imgsz")
    return imgsz if isinstance(imgsz, int) and 32 <= imgsz <= 2048 else DEFAULT_IMGSZ


def _export_onnx(model: Any, imgsz: int, *, end2end: bool) -> Path:
    # nms=False exports the one-to-one head (top-k in the graph, no NMS for us); None exports the raw head.
    # A free input height and width lets the detector pad a wide crop of the rig only to the next multiple
    # of the stride (320 x 224 for a 640 x 420 crop): a third less work than the full square.
    with warnings.catch_warnings():
        # torch's tracer and deprecation warnings about Ultralytics' export code: noise for our user.
        warnings.simplefilter("ignore")
        out = model.export(
            format="onnx", imgsz=imgsz, dynamic=True, simplify=True, batch=1, device="cpu",
            nms=False if end2end else None, verbose=False,
        )  # fmt: skip
    return Path(out)


def _load_checkpoint(yolo: Any, source: Path, weights: Path) -> Any:
    """`YOLO(SOURCE)` of a copy of WEIGHTS; InputDataError naming WEIGHTS when it is not a checkpoint."""
    chatter = logging.getLogger("ultralytics")
    level = chatter.level
    chatter.setLevel(logging.ERROR)  # its warnings about a bad file name the temporary copy
    try:
        model = yolo(str(source))
        _has_one2one_head(model)  # a loaded object without a detection network fails here
    except Exception as err:
        # torch and Ultralytics raise TypeError, RuntimeError, AttributeError, UnpicklingError, ... for a file
        # that is not a checkpoint, with messages naming the temporary copy: say it once, for the user's file.
        raise InputDataError(f"{weights}: not Ultralytics weights (not a checkpoint torch can load)") from err
    finally:
        chatter.setLevel(level)
    return model


def _run(args: argparse.Namespace, yolo: Any, version: str) -> int:
    weights: Path = args.weights
    with tempfile.TemporaryDirectory(prefix="putt-export-") as tmp:
        # Ultralytics writes the .onnx next to the weights; a copy keeps the user's folder untouched.
        source = Path(tmp) / weights.name
        shutil.copyfile(weights, source)
        model = _load_checkpoint(yolo, source, weights)
        if model.task != "detect":
            print(f"putt-daemon export: {weights}: a {model.task} model, not detection", file=sys.stderr)
            return EX_CONFIG
        names = {int(k): str(v) for k, v in model.names.items()}
        has_one2one = _has_one2one_head(model)
        if args.layout == "end2end" and not has_one2one:
            print(f"putt-daemon export: {weights}: no one-to-one head to export end to end", file=sys.stderr)
            return EX_CONFIG
        check_output_folder(args.out)
        frames = load_frames(args.frames, VERIFY_FRAMES)
        end2end = args.layout == "end2end"
        imgsz = args.imgsz or _trained_imgsz(model)
        onnx_path = _export_onnx(model, imgsz, end2end=end2end)
        # The network and its NMS are compared: Ultralytics has no one-box-per-ball step.
        config = DetectorConfig(
            onnx_path, confidence=VERIFY_CONFIDENCE, ball_class=_ball_class(names), same_ball_distance=0
        )
        detector = BallDetector.open(config)
        verdict = verify(yolo(str(source)), detector, frames, end2end=end2end)
        if verdict.problems:
            print(f"putt-daemon export: refused, the ONNX model disagrees with Ultralytics: "
                  f"{'; '.join(verdict.problems)}", file=sys.stderr)  # fmt: skip
            return EX_FAIL
        print(f"verified: {verdict.boxes} boxes on {verdict.frames} frames agree within {TOLERANCE_PX:g} px")
        target = args.out / f"{args.name}.onnx"
        write_atomic(target, onnx_path.read_bytes())
        sidecar: dict[str, Any] = {
            "format_version": SIDECAR_VERSION,
            "model": target.name,
            "sha256": file_sha256(target),
            "names": {str(k): v for k, v in sorted(names.items())},
            "ball_class": config.ball_class,
            "imgsz": list(detector.info.imgsz),
            "stride": detector.info.stride,
            "dynamic": detector.info.dynamic,
            "layout": detector.info.layout,
            "source_weights": weights.name,
            "source_sha256": file_sha256(weights),
            "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "ultralytics_version": version,
            "verified": {"frames": verdict.frames, "boxes": verdict.boxes, "tolerance_px": TOLERANCE_PX},
        }
        training = _training_meta(weights)
        if training is not None:
            sidecar["training"] = training
        if args.int8:
            from daemon.commands.quantize import quantize_and_compare  # noqa: PLC0415  # needs onnx, only with --int8

            int8_path = args.out / f"{args.name}.int8.onnx"
            report = quantize_and_compare(onnx_path, int8_path, config, frames)
            for line in report.table():
                print(line)
            sidecar["int8"] = report.as_json() | {"sha256": file_sha256(int8_path)}
        detector.close()
    write_text_atomic(args.out / f"{args.name}.json", json.dumps(sidecar, indent=2) + "\n")
    print(f"wrote {target} ({sidecar['layout']}, imgsz {imgsz}) sha256 {sidecar['sha256']}")
    return EX_OK


def export_command(args: argparse.Namespace) -> int:
    """Export ARGS.weights to ONNX, verify it, write it with its sidecar; returns the exit code."""
    if any(importlib.util.find_spec(name) is None for name in EXTRA_MODULES):
        print(INSTALL_HINT, file=sys.stderr)
        return EX_USAGE
    if not args.weights.is_file():  # before the seconds Ultralytics takes to import
        print(f"putt-daemon export: {args.weights}: no such weights file", file=sys.stderr)
        return EX_NOINPUT
    if args.weights.suffix.lower() != ".pt":
        # Ultralytics would take any other suffix for an exported model and fail much later, or not at all.
        print(f"putt-daemon export: {args.weights}: not Ultralytics weights (export takes a .pt checkpoint)",
              file=sys.stderr)  # fmt: skip
        return EX_DATAERR
    os.environ["YOLO_OFFLINE"] = "1"  # before ultralytics reads its settings: never reach for the network
    import ultralytics  # noqa: PLC0415  # the optional 'export' extra
    from ultralytics import YOLO  # noqa: PLC0415

    try:
        return _run(args, YOLO, str(ultralytics.__version__))
    except ModelError as err:
        print(f"putt-daemon export: {err}", file=sys.stderr)
        return EX_FAIL
    except (InputDataError, OutputError) as err:
        print(f"putt-daemon export: {err}", file=sys.stderr)
        return EX_DATAERR if isinstance(err, InputDataError) else EX_CANTCREAT
