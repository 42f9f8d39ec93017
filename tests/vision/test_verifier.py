"""The verifier: patches are cut where the box is, bad files are refused, and its verdict drops boxes.

Verdicts are checked with two ONNX graphs that answer from the patch's brightness (a bright centre is a
"ball"), run by ONNX Runtime like the shipped classifier; the shipped one is checked on simulator frames.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from bench.detection_score import detector_config, watched
from bench.detector_accuracy import sampled_frames
from daemon.errors import ModelError
from daemon.models import Box, Frame
from daemon.settings import ModelSettings
from daemon.vision.detector import BallDetector, DetectorConfig
from daemon.vision.verifier import CONTEXT, MIN_SIDE, PATCH, BallVerifier, patch, patch_side
from tests.conftest import REPO
from tools.train_verifier import SETS, insert_boxes, nudged

SHIPPED_DETECTOR = REPO / "models" / "ball.onnx"
SHIPPED_VERIFIER = REPO / "models" / "ball_verifier.onnx"


def brightness_verifier(path: Path, *, gain: float, offset: float) -> Path:
    """A verifier whose logit is GAIN * (mean of the patch's middle 8 x 8) + OFFSET."""
    middle = PATCH // 2 - 4
    nodes = [
        helper.make_node("Slice", ["patches", "starts", "ends", "axes"], ["centre"]),
        helper.make_node("ReduceMean", ["centre", "all_but_batch"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "gain"], ["scaled"]),
        helper.make_node("Add", ["scaled", "offset"], ["logits"]),
    ]
    constants = [
        helper.make_tensor("starts", TensorProto.INT64, [2], [middle, middle]),
        helper.make_tensor("ends", TensorProto.INT64, [2], [middle + 8, middle + 8]),
        helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3]),
        helper.make_tensor("all_but_batch", TensorProto.INT64, [3], [1, 2, 3]),
        helper.make_tensor("gain", TensorProto.FLOAT, [], [gain]),
        helper.make_tensor("offset", TensorProto.FLOAT, [], [offset]),
    ]
    graph = helper.make_graph(
        nodes,
        "verifier",
        [helper.make_tensor_value_info("patches", TensorProto.FLOAT, ["n", 3, PATCH, PATCH])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n"])],
        constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_a_patch_is_centred_on_its_box_and_spans_its_context() -> None:
    image = np.zeros((200, 300, 3), np.uint8)
    cv2.circle(image, (150, 90), 5, (255, 255, 255), -1)
    box = Box(140.0, 80.0, 160.0, 100.0)  # 20 px: the patch spans 80 px, the disc 10 of them
    cut = patch(image, box)
    assert cut.shape == (PATCH, PATCH, 3)
    assert patch_side(box) == CONTEXT * 20
    assert cut[PATCH // 2, PATCH // 2].tolist() == [255, 255, 255]
    disc = np.count_nonzero(cut[:, :, 0] > 127)
    expected = np.pi * (5 * PATCH / 80) ** 2
    assert 0.7 * expected < disc < 1.3 * expected


def test_a_tiny_box_still_gets_its_surroundings_and_an_edge_box_repeats_the_border() -> None:
    assert patch_side(Box(10.0, 10.0, 12.0, 12.0)) == MIN_SIDE
    image = np.zeros((100, 100, 3), np.uint8)
    image[:, :50] = 200
    cut = patch(image, Box(-4.0, 40.0, 4.0, 48.0))  # half off the left edge
    assert cut.shape == (PATCH, PATCH, 3)
    assert cut[PATCH // 2, 0].tolist() == [200, 200, 200]  # beyond the edge: the edge repeated, not black


def test_missing_and_foreign_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="verifier model file not found"):
        BallVerifier.open(tmp_path / "absent.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        BallVerifier.open(junk)
    with pytest.raises(ModelError, match="is not a verifier's"):
        BallVerifier.open(SHIPPED_DETECTOR)  # a detector takes whole frames


def test_the_detector_drops_the_boxes_the_verifier_rejects(tmp_path: Path) -> None:
    """Two balls, one bright and one dim: a verifier that wants a bright centre keeps only the bright one."""
    image = np.full((480, 640, 3), (40, 110, 40), np.uint8)
    cv2.circle(image, (200, 240), 7, (235, 235, 235), -1, cv2.LINE_AA)
    cv2.circle(image, (440, 240), 7, (175, 175, 175), -1, cv2.LINE_AA)
    frame = Frame(0, 0.0, image)
    plain = BallDetector.open(DetectorConfig(SHIPPED_DETECTOR, verifier=None)).detect(frame).items
    assert sorted(round(d.box.center.x / 10) * 10 for d in plain) == [200, 440]
    picky = brightness_verifier(tmp_path / "picky.onnx", gain=40.0, offset=-32.0)  # chance 0.5 at 0.8
    checked = BallDetector.open(DetectorConfig(SHIPPED_DETECTOR, verifier=picky, verifier_threshold=0.5))
    kept = checked.detect(frame).items
    assert [round(d.box.center.x / 10) * 10 for d in kept] == [200]
    assert kept[0] == next(d for d in plain if d.box.center.x < 320)
    verdicts = checked.verifier.ball_chance(image, [d.box for d in plain])  # type: ignore[union-attr]
    assert min(verdicts) < 0.5 < max(verdicts)


def test_the_shipped_verifier_keeps_balls_and_drops_the_putters_look_alike_insert() -> None:
    """Frames of unseen clips with a look-alike putter in view: the true balls and inserts, nudged as the
    detector's boxes are, each given to the shipped verifier at the daemon's threshold."""
    threshold = ModelSettings().verifier_threshold
    verifier = BallVerifier.open(SHIPPED_VERIFIER)
    rng = np.random.default_rng(0)
    balls: list[float] = []
    inserts: list[float] = []
    for sampled in sampled_frames(120, 4, 99900, SETS["putter"], putter=True):
        on_mat = [
            b.box for b in sampled.balls if not b.occluded and watched(sampled.scene.calibration, b.box)
        ]
        found = insert_boxes(sampled)
        chances = verifier.ball_chance(sampled.image, [nudged(b, rng) for b in (*on_mat, *found)])
        balls.extend(chances[: len(on_mat)].tolist())
        inserts.extend(chances[len(on_mat) :].tolist())
    assert len(balls) > 50
    assert len(inserts) > 50
    assert min(balls) >= threshold
    assert sum(c < threshold for c in inserts) >= 0.95 * len(inserts)


def test_a_bench_model_names_a_detector_alone_or_with_its_verifier() -> None:
    alone = detector_config(Path("models/ball.onnx"), confidence=0.3)
    assert (alone.path, alone.verifier, alone.confidence) == (Path("models/ball.onnx"), None, 0.3)
    checked = detector_config(Path("models/ball.onnx+runs/v/verifier.onnx"))
    assert (checked.path, checked.verifier) == (Path("models/ball.onnx"), Path("runs/v/verifier.onnx"))
    assert checked.verifier_threshold == ModelSettings().verifier_threshold
    assert detector_config(Path("a.onnx+b.onnx@0.3")).verifier_threshold == 0.3
