"""The records that cross stage boundaries: frozen, slotted dataclasses, never tuples or dicts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
Outcome = Literal["MAKE", "MISS"]


@dataclass(frozen=True, slots=True)
class Point:
    """A position in frame pixels."""

    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Frame:
    """One camera frame: BGR pixels and the time it was taken, in seconds on the source's clock."""

    index: int
    timestamp: float
    image: Image

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box in frame pixels."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def center(self) -> Point:
        return Point((self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2)

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    def iou(self, other: Box) -> float:
        """Intersection over union with another box."""
        ix = max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))
        iy = max(0.0, min(self.y2, other.y2) - max(self.y1, other.y1))
        inter = ix * iy
        union = self.width * self.height + other.width * other.height - inter
        return inter / union if union > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Detection:
    """One ball the detector found in a frame."""

    box: Box
    confidence: float
    class_id: int = 0


@dataclass(frozen=True, slots=True)
class Detections:
    """Everything the detector found in one frame."""

    frame_index: int
    timestamp: float
    items: tuple[Detection, ...]


@dataclass(frozen=True, slots=True)
class PuttEvent:
    """One classified putt. Times are seconds on the frame source's clock."""

    outcome: Outcome
    detail: str  # the Proof of Putt string, e.g. "MAKE - HOLE: TOP - CENTER"
    start_time: float  # the ball left the mat
    time: float  # the putt was classified
    entry_lane: str  # LEFT, CENTER, RIGHT, RAMP or UNKNOWN
    hole_quadrant: str | None  # TOP, RIGHT, LOW, LEFT for a make
    path: tuple[Point, ...] = ()

    @property
    def is_make(self) -> bool:
        return self.outcome == "MAKE"


@dataclass(frozen=True, slots=True)
class Session:
    """A finished putting session.

    `start_time` is the first putt's start on the source clock; adding `epoch_offset` gives UTC epoch seconds
    (0 for a live camera, whose clock already is UTC epoch time).
    """

    session_id: str
    device_id: str
    start_time: float
    end_time: float
    epoch_offset: float
    putts: tuple[PuttEvent, ...]
    end_reason: str  # idle, max_duration, command, shutdown, recovered

    @property
    def started_at(self) -> float:
        """UTC epoch seconds of the start."""
        return self.start_time + self.epoch_offset

    @property
    def ended_at(self) -> float:
        """UTC epoch seconds of the end."""
        return self.end_time + self.epoch_offset
