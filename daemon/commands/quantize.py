"""INT8 for `putt-daemon export --int8`: static QDQ quantization and an FP32-versus-INT8 comparison.

Calibration frames go through the detector's own letterbox, so INT8 sees exactly what it will see at run time.
The tail of the graph after the last convolutions (box decode, DFL, concat of pixel boxes with 0-1 scores,
NMS) stays in float: one INT8 scale over boxes and scores together would flatten every score. Needs `onnx`
(the `export` extra); the daemon only ever loads the result.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from daemon.atomicfile import write_atomic
from daemon.models import Frame, Image
from daemon.vision.detector import BallDetector, DetectorConfig

TIMED_RUNS = 30
MATCH_IOU = 0.5


class _LetterboxedFrames(CalibrationDataReader):  # type: ignore[misc]  # onnxruntime ships no type hints
    """Feeds the quantizer one prepared input tensor per frame."""

    def __init__(self, detector: BallDetector, frames: list[Image]) -> None:
        self._detector = detector
        self._frames = iter(frames)
        self._input = detector.input_name

    def get_next(self) -> dict[str, Any] | None:
        image = next(self._frames, None)
        if image is None:
            return None
        self._detector.prepare(image)
        return {self._input: self._detector.tensor.copy()}


def float_tail(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes between the last convolutions (DFL's fixed one included) and the outputs."""
    producer = {out: node for node in model.graph.node for out in node.output}
    tail: list[str] = []
    seen: set[str] = set()
    stack = [o.name for o in model.graph.output]
    while stack:
        node = producer.get(stack.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type == "Conv" and "dfl" not in node.name.lower():
            continue  # a head convolution: quantized, and the walk stops here
        tail.append(node.name)
        stack.extend(node.input)
    return tail


@dataclass(frozen=True, slots=True)
class Int8Report:
    """FP32 versus INT8: median session time on one thread and how many FP32 boxes INT8 also finds."""

    fp32_ms: float
    int8_ms: float
    matched: int
    fp32_boxes: int
    int8_boxes: int

    @property
    def int8_wins(self) -> bool:
        """INT8 is recommended only if it is faster and finds exactly the FP32 boxes."""
        same = self.matched == self.fp32_boxes == self.int8_boxes
        return self.int8_ms < self.fp32_ms and same

    def table(self) -> list[str]:
        """A small text table for the export report."""
        return [
            f"{'model':<6} {'median ms (1 thread)':>21} {'boxes':>6} {'matched (IoU>=0.5)':>19}",
            f"{'fp32':<6} {self.fp32_ms:>21.2f} {self.fp32_boxes:>6} {'-':>19}",
            f"{'int8':<6} {self.int8_ms:>21.2f} {self.int8_boxes:>6} {self.matched:>19}",
            "default: "
            + ("int8 wins on speed and agreement" if self.int8_wins else "fp32 (int8 does not win on both)"),
        ]

    def as_json(self) -> dict[str, Any]:
        """The sidecar's `int8` entry."""
        return {
            "fp32_median_ms": round(self.fp32_ms, 3),
            "int8_median_ms": round(self.int8_ms, 3),
            "fp32_boxes": self.fp32_boxes,
            "int8_boxes": self.int8_boxes,
            "matched": self.matched,
            "recommended": self.int8_wins,
        }


def _median_ms(detector: BallDetector, image: Image) -> float:
    detector.prepare(image)
    detector.infer()  # the first run pays for allocations
    times: list[float] = []
    for _ in range(TIMED_RUNS):
        start = time.perf_counter()
        detector.infer()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _frame_stream(frames: list[Image]) -> Iterator[Frame]:
    return (Frame(i, 0.0, image) for i, image in enumerate(frames))


def compare(fp32: BallDetector, int8: BallDetector, frames: list[Image]) -> Int8Report:
    """Time both models and count the FP32 boxes INT8 finds too."""
    matched = fp32_total = int8_total = 0
    for frame in _frame_stream(frames):
        theirs = [d.box for d in fp32.detect(frame).items]
        ours = [d.box for d in int8.detect(frame).items]
        fp32_total, int8_total = fp32_total + len(theirs), int8_total + len(ours)
        for box in theirs:
            best = max(ours, key=box.iou, default=None)
            if best is not None and box.iou(best) >= MATCH_IOU:
                ours.remove(best)
                matched += 1
    return Int8Report(
        _median_ms(fp32, frames[0]), _median_ms(int8, frames[0]), matched, fp32_total, int8_total
    )


def quantize_and_compare(
    fp32_path: Path, out: Path, config: DetectorConfig, frames: list[Image]
) -> Int8Report:
    """Write an INT8 QDQ copy of FP32_PATH to OUT, calibrated on FRAMES, and compare the two."""
    single = replace(config, path=fp32_path, threads=1, sha256="")
    fp32 = BallDetector.open(single)
    with tempfile.TemporaryDirectory(prefix="putt-int8-") as tmp:
        prepared, quantized = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(quantized),
            _LetterboxedFrames(fp32, frames),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=float_tail(onnx.load(str(prepared))),
        )
        model = onnx.load(str(quantized))
        # The quantizer drops the Ultralytics metadata the detector needs (names, imgsz, stride).
        source_meta = onnx.load(str(fp32_path), load_external_data=False).metadata_props
        del model.metadata_props[:]
        model.metadata_props.extend(source_meta)
        write_atomic(out, model.SerializeToString())
    int8 = BallDetector.open(replace(single, path=out))
    try:
        return compare(fp32, int8, frames)
    finally:
        fp32.close()
        int8.close()
