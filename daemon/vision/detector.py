"""Detector stage: BGR frame in, ball boxes in frame pixels out, by an Ultralytics YOLO model in ONNX Runtime.

Contract: `BallDetector.open(config)` validates the model file (present, sha256, loadable, has the ball class)
and raises `ModelError` with one line otherwise; `detect(frame)` returns only the ball class, boxes clipped to
the frame. Pre-processing copies Ultralytics' LetterBox and `scale_boxes` arithmetic so the boxes agree with
`YOLO(...).predict` to the pixel. Two output layouts are decoded: raw `(1, 4+nc, N)` (xywh, class scores; we
filter and run NMS) and end-to-end `(1, N, 6)` (x1, y1, x2, y2, score, class; NMS done in the graph). Then,
unlike Ultralytics, one box per ball: of two boxes whose centres are closer than balls can be, the surer stays
(`same_ball_distance`). Nothing here imports torch or ultralytics.
"""

from __future__ import annotations

import ast
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from daemon.errors import ModelError
from daemon.models import Box, Detection, Detections, Frame, Image
from daemon.vision.verifier import BallVerifier

logger = logging.getLogger(__name__)

Layout = Literal["raw", "end2end"]
FloatArray = npt.NDArray[np.float32]
PAD_VALUE = 114  # Ultralytics' letterbox grey; the model was trained with it
# Lower than Ultralytics' 0.7: two boxes on one small ball overlap less than that, while two real balls
# hardly overlap at all; measured on simulator frames, 0.5 removes most duplicates and loses no ball.
NMS_IOU = 0.5
# Golf balls touch but never overlap: two centres nearer than this share of the surer box's longer side are
# one ball seen twice (IoU misses it on a small, blurred ball: boxes on either end of a streak overlap 0.3).
SAME_BALL_DISTANCE = 0.75
MAX_DET = 300
# What a bad file raises: ONNX Runtime's own classes derive straight from Exception, not RuntimeError.
_ORT_NAMES = ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoSuchFile", "RuntimeException")
_ORT_ERRORS: tuple[type[Exception], ...] = (RuntimeError, *(getattr(ort_state, n) for n in _ORT_NAMES))


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """What the detector needs: the model, its expected hash, thresholds, threads and an optional crop."""

    path: Path
    sha256: str = ""
    imgsz: int | None = None
    confidence: float = 0.45
    ball_class: str = "ball"
    threads: int = 1
    crop: tuple[int, int, int, int] | None = None
    crop_margin: int = 24
    same_ball_distance: float = SAME_BALL_DISTANCE  # 0 keeps every box NMS keeps, as Ultralytics does
    verifier: Path | None = None  # a patch classifier that takes a second look at each box (None: none)
    verifier_threshold: float = 0.02  # boxes it gives a lower chance of being a ball are dropped


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the model file says about itself."""

    names: dict[int, str]
    imgsz: tuple[int, int]
    stride: int
    layout: Layout
    ball_id: int
    # An input of any height and width: a frame is letterboxed to imgsz and padded only up to a multiple of
    # the stride, as Ultralytics predicts, instead of to the full square.
    dynamic: bool = False


@dataclass(frozen=True, slots=True)
class Letterbox:
    """Where a source image lands in the network input: scaled size and top-left padding."""

    src_w: int
    src_h: int
    width: int
    height: int
    left: int
    top: int
    gain_x: float
    gain_y: float
    input_w: int  # the network input, padding included
    input_h: int


def letterbox_geometry(src_h: int, src_w: int, dst_h: int, dst_w: int, stride: int = 0) -> Letterbox:
    """Ultralytics' centred letterbox: one scale for both axes, each side rounded, padding split around it.

    With a STRIDE (a model whose input size is free), the padding only reaches the next multiple of it, as
    Ultralytics' `LetterBox(auto=True)`: a 640 x 420 crop becomes a 320 x 224 input, not 320 x 320.
    """
    r = min(dst_h / src_h, dst_w / src_w)
    new_w, new_h = max(round(src_w * r), 1), max(round(src_h * r), 1)
    if stride:
        dst_w, dst_h = new_w + (dst_w - new_w) % stride, new_h + (dst_h - new_h) % stride
    left, top = round((dst_w - new_w) / 2 - 0.1), round((dst_h - new_h) / 2 - 0.1)
    return Letterbox(src_w, src_h, new_w, new_h, left, top, new_w / src_w, new_h / src_h, dst_w, dst_h)


def decode_raw(
    output: FloatArray, class_id: int, confidence: float, iou: float = NMS_IOU
) -> tuple[FloatArray, FloatArray]:
    """(4+nc, N) xywh + scores -> (K, 4) xyxy and (K,) scores of CLASS_ID after NMS, best first."""
    scores_all = output[4:]
    scores = scores_all[class_id]
    # A head without DFL can regress negative sizes; such a box is no detection, and left in, OpenCV's NMS
    # would let it suppress the real ball next to it.
    keep = (scores > confidence) & (output[2] > 0) & (output[3] > 0)
    if scores_all.shape[0] > 1:  # Ultralytics gives each anchor its best class only
        keep &= scores_all.argmax(axis=0) == class_id
    if not keep.any():
        return np.empty((0, 4), np.float32), np.empty(0, np.float32)
    xywh = output[:4, keep].T
    kept_scores = scores[keep]
    # cv2 wants (x, y, w, h) top-left boxes; torchvision's NMS on xyxy uses the same IoU.
    tlwh = xywh.copy()
    tlwh[:, :2] -= xywh[:, 2:] / 2
    picked = cv2.dnn.NMSBoxes(tlwh, kept_scores, confidence, iou, top_k=MAX_DET)  # type: ignore[arg-type]  # takes (N, 4) arrays
    index = np.asarray(picked, dtype=np.int64).reshape(-1)
    boxes = tlwh[index]
    boxes[:, 2:] += boxes[:, :2]
    return boxes, kept_scores[index]


def drop_same_ball(
    xyxy: FloatArray, scores: FloatArray, distance: float = SAME_BALL_DISTANCE
) -> tuple[FloatArray, FloatArray]:
    """The boxes, best first, without any whose centre is too near a surer box's to be another ball."""
    order = np.argsort(-scores, kind="stable")
    xyxy, scores = xyxy[order], scores[order]
    centres = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    reach = distance * np.maximum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])
    kept: list[int] = []
    for i in range(len(scores)):
        if all(np.hypot(*(centres[i] - centres[k])) >= reach[k] for k in kept):
            kept.append(i)
    return xyxy[kept], scores[kept]


def decode_end2end(output: FloatArray, class_id: int, confidence: float) -> tuple[FloatArray, FloatArray]:
    """(N, 6) x1, y1, x2, y2, score, class -> (K, 4) xyxy and (K,) scores of CLASS_ID."""
    keep = (output[:, 4] > confidence) & (output[:, 5] == class_id)
    keep &= (output[:, 2] > output[:, 0]) & (output[:, 3] > output[:, 1])
    return output[keep, :4].copy(), output[keep, 4].copy()


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _literal(meta: dict[str, str], key: str, path: Path) -> object:
    if key not in meta:
        raise ModelError(f"{path}: no Ultralytics metadata '{key}' (export it with `putt-daemon export`)")
    try:
        return ast.literal_eval(meta[key])
    except (ValueError, SyntaxError) as err:
        raise ModelError(f"{path}: unreadable metadata '{key}': {meta[key]!r}") from err


def read_model_info(session: ort.InferenceSession, config: DetectorConfig) -> ModelInfo:
    """Names, input size, stride and output layout from the session and its Ultralytics metadata."""
    path = config.path
    meta: dict[str, str] = session.get_modelmeta().custom_metadata_map
    names = _literal(meta, "names", path)
    if not isinstance(names, dict) or not names:
        raise ModelError(f"{path}: metadata 'names' is not a class table (got {meta['names']!r})")
    names = {int(k): str(v) for k, v in names.items()}
    ball_ids = [k for k, v in names.items() if v == config.ball_class]
    if not ball_ids:
        raise ModelError(
            f"{path}: no class named {config.ball_class!r} (classes: {', '.join(names.values())}); "
            "set PUTT_MODEL_BALL_CLASS"
        )
    shape = session.get_inputs()[0].shape
    out_shape = session.get_outputs()[0].shape
    static = len(shape) == 4 and all(isinstance(v, int) for v in shape[2:])
    model_size = (int(shape[2]), int(shape[3])) if static else None
    if config.imgsz is not None and model_size not in (None, (config.imgsz, config.imgsz)):
        raise ModelError(
            f"{path}: exported for imgsz {model_size}, not {config.imgsz}; re-export or change it"
        )
    imgsz = (config.imgsz, config.imgsz) if config.imgsz else model_size
    if imgsz is None:
        size = _literal(meta, "imgsz", path)
        imgsz = (int(size[0]), int(size[1])) if isinstance(size, list) else (int(str(size)), int(str(size)))
    nc = len(names)
    # Ultralytics marks end-to-end heads with end2end, and graphs with NMS baked in with args nms=True.
    end2end = meta.get("end2end") == "True" or "'nms': True" in meta.get("args", "")
    end2end = end2end or (len(out_shape) == 3 and out_shape[2] == 6 and out_shape[1] != 4 + nc)
    if not end2end and (len(out_shape) != 3 or out_shape[1] not in (4 + nc, None)):
        raise ModelError(f"{path}: output shape {out_shape} is not a YOLO detection output")
    layout: Layout = "end2end" if end2end else "raw"
    return ModelInfo(names, imgsz, int(meta.get("stride", "32")), layout, ball_ids[0], dynamic=not static)


def create_session(config: DetectorConfig) -> ort.InferenceSession:
    """An ONNX Runtime CPU session with the config's threads and full graph optimisation."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = config.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # its warnings go to stderr, bypassing our logging
    try:
        return ort.InferenceSession(str(config.path), options, providers=["CPUExecutionProvider"])
    except _ORT_ERRORS as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"{config.path}: not a loadable ONNX model ({first})") from err


class BallDetector:
    """Finds the ball in frames; build with `BallDetector.open`."""

    def __init__(
        self,
        config: DetectorConfig,
        session: ort.InferenceSession,
        info: ModelInfo,
        verifier: BallVerifier | None = None,
    ) -> None:
        self.config = config
        self.info = info
        self.verifier = verifier
        self._session = session
        self._input: str = session.get_inputs()[0].name
        self._output: str = session.get_outputs()[0].name
        dtype = np.float16 if session.get_inputs()[0].type == "tensor(float16)" else np.float32
        h, w = info.imgsz
        # Allocated once: the resized frame, and the input tensor whose grey border is written only when the
        # frame size changes; per frame only the letterboxed area is rewritten.
        self._resized: Image = np.empty((h, w, 3), np.uint8)
        self._tensor: npt.NDArray[np.float32 | np.float16] = np.empty((1, 3, h, w), dtype)
        self._geometry: Letterbox | None = None

    @classmethod
    def open(cls, config: DetectorConfig, frame_size: tuple[int, int] | None = None) -> BallDetector:
        """Validate the model file and load it, or raise ModelError with one line saying why not.

        FRAME_SIZE (width, height) is the size of the frames to come, if known: the warm-up then runs on the
        input shape they will have.
        """
        path = config.path
        if not path.is_file():
            raise ModelError(f"{path}: model file not found")
        if config.sha256:
            actual = file_sha256(path)
            if actual != config.sha256.lower():
                raise ModelError(
                    f"{path}: sha256 {actual} does not match PUTT_MODEL_SHA256 {config.sha256.lower()}"
                )
        session = create_session(config)
        info = read_model_info(session, config)
        logger.info(
            "detector %s: %s layout, imgsz %s, ball class %d, %d thread(s)",
            path, info.layout, info.imgsz, info.ball_id, config.threads,
        )  # fmt: skip
        verifier = BallVerifier.open(config.verifier) if config.verifier else None
        detector = cls(config, session, info, verifier)
        detector._warm_up(frame_size)
        return detector

    def _warm_up(self, frame_size: tuple[int, int] | None) -> None:
        # The first run plans the graph and allocates ONNX Runtime's working memory. Doing it here, before
        # the service says READY, makes the first frame as fast as any, settles memory from the start, and
        # refuses a model that loads but cannot run.
        if frame_size is None:
            self._tensor.fill(self._tensor.dtype.type(PAD_VALUE / 255))
        else:
            self.prepare(np.full((frame_size[1], frame_size[0], 3), PAD_VALUE, np.uint8))
        try:
            self.infer()
        except _ORT_ERRORS as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ModelError(f"{self.config.path}: the model does not run ({first})") from err

    @property
    def session(self) -> ort.InferenceSession:
        """The ONNX Runtime session (for benchmarks: `run` it on `tensor`)."""
        return self._session

    @property
    def input_name(self) -> str:
        """The network's input name."""
        return self._input

    @property
    def tensor(self) -> npt.NDArray[np.float32 | np.float16]:
        """The prepared input tensor (reused: copy it to keep it)."""
        return self._tensor

    def _source(self, image: Image) -> tuple[Image, int, int]:
        """The part of the frame the network sees, and its offset in the frame."""
        crop = self.config.crop
        if crop is None:
            return image, 0, 0
        m, (h, w) = self.config.crop_margin, image.shape[:2]
        x1, y1 = max(crop[0] - m, 0), max(crop[1] - m, 0)
        x2, y2 = min(crop[2] + m + 1, w), min(crop[3] + m + 1, h)
        if x2 <= x1 or y2 <= y1:
            return image, 0, 0
        return image[y1:y2, x1:x2], x1, y1

    def prepare(self, image: Image) -> tuple[Letterbox, int, int]:
        """Letterbox IMAGE into the input tensor; returns the geometry and crop offset to map boxes back."""
        source, ox, oy = self._source(image)
        src_h, src_w = int(source.shape[0]), int(source.shape[1])
        box = self._geometry
        if box is None or (box.src_h, box.src_w) != (src_h, src_w):
            h, w = self.info.imgsz
            box = letterbox_geometry(src_h, src_w, h, w, self.info.stride if self.info.dynamic else 0)
            if self._tensor.shape[2:] != (box.input_h, box.input_w):
                self._tensor = np.empty((1, 3, box.input_h, box.input_w), self._tensor.dtype)
            self._tensor.fill(self._tensor.dtype.type(PAD_VALUE / 255))
            self._geometry = box
        if (box.height, box.width) == (src_h, src_w):
            scaled = source
        else:
            scaled = self._resized[: box.height, : box.width]
            cv2.resize(source, (box.width, box.height), dst=scaled, interpolation=cv2.INTER_LINEAR)
        # BGR -> RGB, HWC -> CHW and /255 in one pass over strided views, straight into the tensor.
        np.multiply(
            scaled[:, :, ::-1].transpose(2, 0, 1),
            np.float32(1 / 255),
            out=self._tensor[0, :, box.top : box.top + box.height, box.left : box.left + box.width],
            dtype=self._tensor.dtype,
            casting="unsafe",
        )
        return box, ox, oy

    def infer(self) -> FloatArray:
        """Run the network on the prepared tensor; the first output without its batch axis."""
        result: FloatArray = self._session.run([self._output], {self._input: self._tensor})[0][0]
        return result.astype(np.float32, copy=False)

    def detect(self, frame: Frame) -> Detections:
        """The balls in FRAME, best first, boxes in frame pixels."""
        box, ox, oy = self.prepare(frame.image)
        output = self.infer()
        conf, ball = self.config.confidence, self.info.ball_id
        if self.info.layout == "raw":
            xyxy, scores = decode_raw(output, ball, conf)
        else:
            xyxy, scores = decode_end2end(output, ball, conf)
        if self.config.same_ball_distance > 0:
            xyxy, scores = drop_same_ball(xyxy, scores, self.config.same_ball_distance)
        xyxy[:, 0::2] = (xyxy[:, 0::2] - box.left) / box.gain_x
        xyxy[:, 1::2] = (xyxy[:, 1::2] - box.top) / box.gain_y
        np.clip(xyxy[:, 0::2], 0, box.src_w, out=xyxy[:, 0::2])
        np.clip(xyxy[:, 1::2], 0, box.src_h, out=xyxy[:, 1::2])
        items = tuple(
            Detection(Box(x1 + ox, y1 + oy, x2 + ox, y2 + oy), float(s), ball)
            for (x1, y1, x2, y2), s in zip(xyxy.tolist(), scores.tolist(), strict=True)
        )
        if self.verifier is not None and items:
            chances = self.verifier.ball_chance(frame.image, [item.box for item in items])
            threshold = self.config.verifier_threshold
            items = tuple(item for item, chance in zip(items, chances, strict=True) if chance >= threshold)
        return Detections(frame.index, frame.timestamp, items)

    def close(self) -> None:
        """Release the ONNX Runtime session."""
        del self._session
