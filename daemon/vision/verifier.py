"""Second look at each detection: a small classifier on the patch around a box says whether it is a ball.

The detector sees the whole rig at once and has little capacity to spare; the things it takes for a ball
(a putter's round white insert, glare on a shiny tray) are told apart by what lies around them. The verifier
sees only a patch of `CONTEXT` box widths around each box, scaled to `PATCH` pixels, and gives the chance
that a ball is at its centre. Contract: `BallVerifier.open(path)` raises `ModelError` with one line for a
file that is missing or not such a classifier; `ball_chance(image, boxes)` returns one chance per box.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from daemon.errors import ModelError
from daemon.models import Box, Image

logger = logging.getLogger(__name__)

PATCH = 48  # pixels a side of the classifier's input
CONTEXT = 4.0  # a patch spans this many box widths: enough to show a putter head round its insert
MIN_SIDE = 24.0  # frame pixels: a tiny box still gets a patch showing its surroundings


def patch_side(box: Box) -> float:
    """How many frame pixels a side of BOX's patch spans."""
    return max(CONTEXT * max(box.width, box.height), MIN_SIDE)


def patch(image: Image, box: Box) -> Image:
    """The PATCH x PATCH BGR patch centred on BOX; beyond the frame's edge its border pixels repeat."""
    side = patch_side(box)
    scale = PATCH / side
    centre = box.center
    # One affine warp crops, scales and replicates the border in a single pass.
    matrix = np.array(
        [[scale, 0.0, PATCH / 2 - scale * centre.x], [0.0, scale, PATCH / 2 - scale * centre.y]], np.float64
    )
    patch_image: Image = cv2.warpAffine(
        image, matrix, (PATCH, PATCH), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip
    return patch_image


def patches_tensor(image: Image, boxes: Sequence[Box]) -> npt.NDArray[np.float32]:
    """(N, 3, PATCH, PATCH) RGB floats in 0-1 of BOXES, as the classifier was trained on."""
    stack = np.stack([patch(image, box) for box in boxes])
    tensor = np.ascontiguousarray(stack[:, :, :, ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
    tensor *= np.float32(1 / 255)
    return tensor


class BallVerifier:
    """The patch classifier in ONNX Runtime; build with `BallVerifier.open`."""

    def __init__(self, path: Path, session: ort.InferenceSession) -> None:
        self.path = path
        self._session = session
        self._input: str = session.get_inputs()[0].name

    @classmethod
    def open(cls, path: Path) -> BallVerifier:
        """Load the classifier at PATH, or raise ModelError saying why not."""
        if not path.is_file():
            raise ModelError(f"{path}: verifier model file not found")
        options = ort.SessionOptions()
        # A few patches a frame are too little work to share out: a thread pool of its own would only spin
        # against the detector's.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # ONNX Runtime's error classes do not share a base below Exception
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ModelError(f"{path}: not a loadable ONNX model ({first})") from err
        shape = session.get_inputs()[0].shape
        if len(shape) != 4 or shape[1:] != [3, PATCH, PATCH]:
            raise ModelError(f"{path}: input {shape} is not a verifier's (N, 3, {PATCH}, {PATCH})")
        verifier = cls(path, session)
        try:
            verifier.run(np.zeros((1, 3, PATCH, PATCH), np.float32))
        except Exception as err:
            raise ModelError(f"{path}: the verifier does not run ({err})") from err
        logger.info("verifier %s: patches of %d px, %.0f box widths", path, PATCH, CONTEXT)
        return verifier

    def run(self, tensor: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Chance of a ball for each patch of an (N, 3, PATCH, PATCH) tensor."""
        logits: npt.NDArray[np.float32] = self._session.run(None, {self._input: tensor})[0]
        if logits.shape != (len(tensor),):
            raise ModelError(f"{self.path}: output shape {logits.shape}, not ({len(tensor)},)")
        return (1 / (1 + np.exp(-logits.astype(np.float64)))).astype(np.float32)

    def ball_chance(self, image: Image, boxes: Sequence[Box]) -> npt.NDArray[np.float32]:
        """For each of BOXES in IMAGE, the chance that it is a ball."""
        if not boxes:
            return np.empty(0, np.float32)
        return self.run(patches_tensor(image, boxes))
