"""The runtime detector: letterbox and decoding match Ultralytics, both layouts agree, bad models are refused.

An untrained YOLO scores every anchor the same, so `build_weights` gives a tiny YOLOv8 real BatchNorm
statistics and random head weights: its boxes mean nothing, but they are many, distinct and depend on the
image.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from daemon.commands.export import synthetic_frames
from daemon.errors import ModelError
from daemon.models import Frame
from daemon.vision.detector import (
    BallDetector,
    DetectorConfig,
    decode_end2end,
    decode_raw,
    drop_same_ball,
    letterbox_geometry,
)
from tests.conftest import CONF, IMGSZ, REPO, build_weights, export_onnx

os.environ.setdefault("YOLO_OFFLINE", "1")  # before ultralytics is imported by any fixture
# Compared box for box with Ultralytics, which has no one-box-per-ball step after its NMS.
PARITY = functools.partial(DetectorConfig, same_ball_distance=0)


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Weights, raw and end-to-end (NMS in the graph) exports of one tiny model, and a two-class model."""
    folder = tmp_path_factory.mktemp("detector-models")
    weights = build_weights(folder / "ball.pt")
    other = build_weights(folder / "other.pt", names={0: "person", 1: "car"})
    return {
        "weights": weights,
        "raw": export_onnx(weights, folder / "raw.onnx"),
        "dynamic": export_onnx(weights, folder / "dynamic.onnx", dynamic=True),
        "end2end": export_onnx(weights, folder / "end2end.onnx", nms=True, conf=CONF, iou=0.7),
        "other": export_onnx(other, folder / "other.onnx"),
    }


def as_rows(detections: object) -> np.ndarray:
    items = detections.items  # type: ignore[attr-defined]
    return np.array([[d.box.x1, d.box.y1, d.box.x2, d.box.y2, d.confidence] for d in items]).reshape(-1, 5)


def test_letterbox_is_ultralytics_letterbox(models: dict[str, Path]) -> None:
    from ultralytics.data.augment import LetterBox

    detector = BallDetector.open(DetectorConfig(models["raw"]))
    for shape in [(480, 640), (720, 1280), (333, 250), (320, 320), (100, 900)]:
        image = np.random.default_rng(1).integers(0, 255, (*shape, 3), dtype=np.uint8)
        detector.prepare(image)
        expected = LetterBox((IMGSZ, IMGSZ), auto=False)(image=image)
        got = (detector.tensor[0].transpose(1, 2, 0)[:, :, ::-1] * 255).round().astype(np.uint8)
        assert np.array_equal(got, expected), shape
        box = letterbox_geometry(*shape, IMGSZ, IMGSZ)
        assert box.width <= IMGSZ
        assert box.height <= IMGSZ


def test_a_model_of_any_input_size_pads_only_to_the_stride(models: dict[str, Path]) -> None:
    from ultralytics.data.augment import LetterBox

    detector = BallDetector.open(DetectorConfig(models["dynamic"]))
    assert detector.info.dynamic
    assert detector.info.imgsz == (IMGSZ, IMGSZ)
    for shape in [(480, 640), (420, 640), (333, 250), (320, 320), (100, 900)]:
        image = np.random.default_rng(1).integers(0, 255, (*shape, 3), dtype=np.uint8)
        detector.prepare(image)
        expected = LetterBox((IMGSZ, IMGSZ), auto=True, stride=32)(image=image)
        got = (detector.tensor[0].transpose(1, 2, 0)[:, :, ::-1] * 255).round().astype(np.uint8)
        assert np.array_equal(got, expected), shape
        assert got.shape[0] % 32 == got.shape[1] % 32 == 0
    assert detector.tensor.shape == (1, 3, 64, 320)  # the 100 x 900 image: 36 rows, padded to 64


def test_a_model_of_any_input_size_matches_ultralytics_predict(models: dict[str, Path]) -> None:
    from ultralytics import YOLO

    reference = YOLO(str(models["weights"]))
    dynamic = BallDetector.open(PARITY(models["dynamic"], confidence=CONF), frame_size=(800, 450))
    assert dynamic.tensor.shape == (1, 3, 192, 320)  # warmed up on the shape the frames will have
    image = synthetic_frames(1, seed=9, size=(800, 450))[0]
    ours = as_rows(dynamic.detect(Frame(0, 0.0, image)))
    theirs = reference.predict(image, imgsz=IMGSZ, conf=CONF, rect=True, verbose=False)[0].boxes
    assert len(ours) == len(theirs) > 0
    np.testing.assert_allclose(ours[:, :4], theirs.xyxy.numpy(), atol=1.0)


def test_decode_raw_filters_and_suppresses() -> None:
    # Columns are anchors (x, y, w, h, score): two overlapping, one apart, one below the threshold.
    raw = np.array(
        [[50, 52, 200, 50], [50, 50, 200, 50], [20, 20, 30, 20], [20, 20, 30, 20], [0.9, 0.8, 0.7, 0.2]],
        dtype=np.float32,
    )
    boxes, scores = decode_raw(raw, 0, 0.5)
    assert scores.tolist() == pytest.approx([0.9, 0.7])
    assert boxes.tolist() == [[40, 40, 60, 60], [185, 185, 215, 215]]


def test_decode_raw_keeps_only_anchors_whose_best_class_is_the_ball() -> None:
    raw = np.array([[50, 150], [50, 50], [20, 20], [20, 20], [0.9, 0.6], [0.95, 0.1]], dtype=np.float32)
    boxes, scores = decode_raw(raw, 0, 0.5)
    assert scores.tolist() == pytest.approx([0.6])
    assert boxes.tolist() == [[140, 40, 160, 60]]


def test_decode_raw_drops_boxes_of_no_size_so_they_cannot_hide_a_ball() -> None:
    # A head without DFL can regress a negative width; the shipped model did so, at 0.91, over a ball at 0.7.
    raw = np.array(
        [[391.8, 256.3, 100], [69.2, 168.7, 100], [-415.6, 13.0, 0], [1336.2, 13.0, 10], [0.91, 0.7, 0.8]],
        dtype=np.float32,
    )
    boxes, scores = decode_raw(raw, 0, 0.45)
    assert scores.tolist() == pytest.approx([0.7])
    assert len(boxes) == 1
    assert boxes[0].tolist() == pytest.approx([249.8, 162.2, 262.8, 175.2])


def ball_box(x: float, y: float, size: float = 11.0) -> list[float]:
    return [x - size / 2, y - size / 2, x + size / 2, y + size / 2]


def test_two_boxes_on_one_blurred_ball_are_one_ball_and_two_touching_balls_stay_two() -> None:
    # A rolling ball of seed 7002: found twice along its streak, 6 px apart (IoU 0.3, which NMS keeps); the
    # weaker box started a track of its own that vanished by the hole and was counted as a make.
    streak = np.array([ball_box(381, 284), ball_box(380, 290)], dtype=np.float32)
    boxes, scores = drop_same_ball(streak, np.array([0.48, 0.56], dtype=np.float32))
    assert scores.tolist() == pytest.approx([0.56])
    assert boxes.tolist() == [ball_box(380, 290)]
    touching = np.array([ball_box(100, 100), ball_box(111, 100), ball_box(100, 300)], dtype=np.float32)
    boxes, scores = drop_same_ball(touching, np.array([0.6, 0.9, 0.7], dtype=np.float32))
    assert scores.tolist() == pytest.approx([0.9, 0.7, 0.6])
    assert boxes.tolist() == [ball_box(111, 100), ball_box(100, 300), ball_box(100, 100)]


def test_decode_end2end_drops_boxes_of_no_size() -> None:
    out = np.array([[10, 2, 3, 4, 0.9, 0], [1, 2, 3, 4, 0.8, 0], [1, 4, 3, 4, 0.8, 0]], dtype=np.float32)
    boxes, _ = decode_end2end(out, 0, 0.5)
    assert boxes.tolist() == [[1, 2, 3, 4]]


def test_decode_end2end_filters_class_and_confidence() -> None:
    out = np.array([[1, 2, 3, 4, 0.9, 0], [5, 6, 7, 8, 0.9, 1], [1, 2, 3, 4, 0.1, 0]], dtype=np.float32)
    boxes, scores = decode_end2end(out, 0, 0.5)
    assert boxes.tolist() == [[1, 2, 3, 4]]
    assert scores.tolist() == pytest.approx([0.9])


def test_both_layouts_decode_to_the_same_boxes(models: dict[str, Path]) -> None:
    raw = BallDetector.open(DetectorConfig(models["raw"], confidence=CONF))
    e2e = BallDetector.open(DetectorConfig(models["end2end"], confidence=CONF))
    assert (raw.info.layout, e2e.info.layout) == ("raw", "end2end")
    total = 0
    for index, image in enumerate(synthetic_frames(3, seed=5)):
        a, b = as_rows(raw.detect(Frame(index, 0.0, image))), as_rows(e2e.detect(Frame(index, 0.0, image)))
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=0.01)
        total += len(a)
    assert total > 5


def test_boxes_match_ultralytics_predict(models: dict[str, Path]) -> None:
    from ultralytics import YOLO

    reference = YOLO(str(models["weights"]))
    detector = BallDetector.open(PARITY(models["raw"], confidence=CONF))
    image = synthetic_frames(1, seed=9, size=(800, 450))[0]
    ours = as_rows(detector.detect(Frame(0, 0.0, image)))
    theirs = reference.predict(image, imgsz=IMGSZ, conf=CONF, rect=False, verbose=False)[0].boxes
    assert len(ours) == len(theirs) > 0
    np.testing.assert_allclose(ours[:, :4], theirs.xyxy.numpy(), atol=1.0)


def test_crop_sees_the_region_and_maps_boxes_back(models: dict[str, Path]) -> None:
    from ultralytics import YOLO

    image = synthetic_frames(1, seed=3)[0]
    crop, margin = (200, 100, 439, 339), 20
    detector = BallDetector.open(PARITY(models["raw"], confidence=CONF, crop=crop, crop_margin=margin))
    ours = as_rows(detector.detect(Frame(0, 0.0, image)))
    region = image[80:360, 180:460]
    theirs = YOLO(str(models["weights"])).predict(region, imgsz=IMGSZ, conf=CONF, rect=False, verbose=False)[
        0
    ]
    assert len(ours) == len(theirs.boxes) > 0
    np.testing.assert_allclose(
        ours[:, :4], theirs.boxes.xyxy.numpy() + np.array([180, 80, 180, 80]), atol=1.0
    )
    assert ours[:, 0].min() >= 180
    assert ours[:, 2].max() <= 460


def test_a_frame_allocates_nothing_large(models: dict[str, Path]) -> None:
    detector = BallDetector.open(DetectorConfig(models["raw"], confidence=CONF))
    frame = Frame(0, 0.0, synthetic_frames(1)[0])
    detector.detect(frame)
    tracemalloc.start()
    try:
        detector.detect(frame)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200_000  # the canvas alone is 300 kB, the input tensor 1.2 MB


def test_frame_size_change_clears_the_old_picture(models: dict[str, Path]) -> None:
    detector = BallDetector.open(DetectorConfig(models["raw"]))
    detector.prepare(np.full((320, 320, 3), 255, np.uint8))
    detector.prepare(np.zeros((160, 320, 3), np.uint8))
    assert detector.tensor[0, :, 0, 0] == pytest.approx([114 / 255] * 3)


def test_sha256_is_checked(models: dict[str, Path]) -> None:
    path = models["raw"]
    good = hashlib.sha256(path.read_bytes()).hexdigest()
    assert BallDetector.open(DetectorConfig(path, sha256=good.upper())).info.names == {0: "ball"}
    with pytest.raises(ModelError, match=f"sha256 {good} does not match PUTT_MODEL_SHA256 {'0' * 64}"):
        BallDetector.open(DetectorConfig(path, sha256="0" * 64))


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"ball.onnx: model file not found$"):
        BallDetector.open(DetectorConfig(tmp_path / "ball.onnx"))


@pytest.mark.parametrize("kind", ["truncated", "random", "empty"])
def test_corrupt_files_are_refused(models: dict[str, Path], tmp_path: Path, kind: str) -> None:
    path = tmp_path / "ball.onnx"
    data = {
        "truncated": models["raw"].read_bytes()[:1000],
        "random": np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes(),
        "empty": b"",
    }[kind]
    path.write_bytes(data)
    with pytest.raises(ModelError, match=r"ball.onnx: not a loadable ONNX model \(") as caught:
        BallDetector.open(DetectorConfig(path))
    assert "\n" not in str(caught.value)


def test_model_without_ball_class_is_refused(models: dict[str, Path]) -> None:
    with pytest.raises(
        ModelError, match=r"no class named 'ball' \(classes: person, car\); set PUTT_MODEL_BALL_CLASS"
    ):
        BallDetector.open(DetectorConfig(models["other"]))
    assert BallDetector.open(DetectorConfig(models["other"], ball_class="car")).info.ball_id == 1


def test_model_without_metadata_is_refused(models: dict[str, Path], tmp_path: Path) -> None:
    model = onnx.load(str(models["raw"]))
    del model.metadata_props[:]
    path = tmp_path / "bare.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelError, match="no Ultralytics metadata 'names'"):
        BallDetector.open(DetectorConfig(path))


def test_wrong_imgsz_is_refused(models: dict[str, Path]) -> None:
    with pytest.raises(ModelError, match=r"exported for imgsz \(320, 320\), not 640"):
        BallDetector.open(DetectorConfig(models["raw"], imgsz=640))


def test_importing_the_detector_pulls_in_neither_torch_nor_ultralytics() -> None:
    code = (
        "import sys, daemon.vision.detector\n"
        "heavy = sorted({'torch', 'ultralytics'} & set(sys.modules))\n"
        "print(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert result.stdout.strip() == "[]"


def test_opencv_is_used_for_resizing() -> None:
    # Guards the in-place resize the detector relies on: cv2 writes into a strided view of the canvas.
    canvas = np.zeros((10, 10, 3), np.uint8)
    view = canvas[2:8, 1:9]
    cv2.resize(np.full((3, 4, 3), 7, np.uint8), (8, 6), dst=view)
    assert canvas[2:8, 1:9].min() == 7
    assert canvas[0].max() == 0
