"""Motion gate stage: a frame in, whether anything moved since the detector last looked.

Most frames of a putting mat are still (balls at rest, nobody there). The gate compares a small blurred grey
copy of the rig area with the one from the last detected frame; when nothing changed, the pipeline reuses the
last detections instead of running the network. Slow lighting drift eventually trips it too, which only costs
one detection and refreshes the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from daemon.models import Frame, Image


@dataclass(frozen=True, slots=True)
class MotionGateConfig:
    """How much change counts as motion."""

    scale: int = 4  # the comparison runs at 1/scale resolution
    threshold: int = 16  # grey levels a pixel must change by
    min_pixels: int = 2  # changed pixels (at 1/scale) that make a motion
    max_skip: float = 3.0  # seconds after which the detector runs anyway
    crop: tuple[int, int, int, int] | None = None  # x1, y1, x2, y2 of the area that matters


class MotionGate:
    """Says whether a frame needs the detector."""

    def __init__(self, config: MotionGateConfig) -> None:
        self._config = config
        self._reference: Image | None = None
        self._reference_time = -np.inf
        self._small: Image | None = None

    def reset(self) -> None:
        """Forget the reference: the next frame is always detected."""
        self._reference = None

    def _shrink(self, frame: Frame) -> Image:
        image = frame.image
        if self._config.crop is not None:
            x1, y1, x2, y2 = self._config.crop
            image = image[max(y1, 0) : y2, max(x1, 0) : x2]
        s = self._config.scale
        size = (max(image.shape[1] // s, 1), max(image.shape[0] // s, 1))
        # One pixel of each s x s block, before the colour conversion: the gate runs on every frame, and
        # averaging the blocks cost three times as much. The smallest ball (8 px) still covers two samples
        # across, and the blur stands in for the average against sensor noise.
        small = cv2.resize(image, size, interpolation=cv2.INTER_NEAREST)
        blurred: Image = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (3, 3), 0)
        return blurred

    def moved(self, frame: Frame) -> bool:
        """Whether FRAME differs from the last detected one (call `detected` after running the detector)."""
        self._small = self._shrink(frame)
        reference = self._reference
        if reference is None or reference.shape != self._small.shape:
            return True
        if frame.timestamp - self._reference_time >= self._config.max_skip:
            return True
        diff = cv2.absdiff(self._small, reference)
        return int(np.count_nonzero(diff > self._config.threshold)) >= self._config.min_pixels

    def detected(self, frame: Frame) -> None:
        """The detector ran on FRAME: it becomes the reference."""
        self._reference = self._small if self._small is not None else self._shrink(frame)
        self._reference_time = frame.timestamp
