"""Debug drawing for `process --annotate`: regions, ball boxes, tracks and each putt's outcome on the frame.

This is how a user checks a calibration against a recorded clip; it is a stage of its own so the vision loop
never carries drawing code.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import cv2
import numpy as np

from daemon.errors import OutputError
from daemon.models import Frame, PuttEvent
from daemon.vision.calibration import Calibration
from daemon.vision.overlay import draw_regions
from daemon.vision.pipeline import PipelineStep

_LABEL_SECONDS = 2.5


class Annotator:
    """Writes an annotated copy of a clip."""

    def __init__(self, path: Path, calibration: Calibration, fps: float) -> None:
        self._path = path
        self._fps = fps
        self._writer: cv2.VideoWriter | None = None
        self._calibration = calibration
        self._trails: dict[int, deque[tuple[int, int]]] = {}
        self._labels: deque[PuttEvent] = deque()

    def _open(self, width: int, height: int) -> cv2.VideoWriter:
        writer = cv2.VideoWriter(str(self._path), cv2.VideoWriter.fourcc(*"mp4v"), self._fps, (width, height))
        if not writer.isOpened():
            raise OutputError(f"cannot write the annotated video {self._path}")
        self._calibration = self._calibration.scaled(width, height)
        return writer

    def add(self, frame: Frame, step: PipelineStep) -> None:
        """Draw one frame."""
        if self._writer is None:
            self._writer = self._open(frame.width, frame.height)
        observation, putts = step.observation, step.putts
        image = frame.image.copy()
        draw_regions(image, self._calibration)
        live = set()
        for ball in observation.balls:
            live.add(ball.track_id)
            trail = self._trails.setdefault(ball.track_id, deque(maxlen=45))
            trail.append((round(ball.position.x), round(ball.position.y)))
            if len(trail) > 1:
                cv2.polylines(
                    image, [np.array(trail, dtype=np.int32).reshape(-1, 1, 2)], False, (0, 255, 255), 1
                )
            if ball.box is not None:
                b = ball.box
                cv2.rectangle(image, (round(b.x1), round(b.y1)), (round(b.x2), round(b.y2)), (0, 0, 255), 1)
        self._trails = {k: v for k, v in self._trails.items() if k in live}
        self._labels.extend(putts)
        while self._labels and frame.timestamp - self._labels[0].time > _LABEL_SECONDS:
            self._labels.popleft()
        for row, putt in enumerate(self._labels):
            colour = (0, 200, 0) if putt.is_make else (0, 0, 230)
            cv2.putText(
                image, putt.detail, (8, 20 + 18 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA
            )
        self._writer.write(image)

    def close(self) -> None:
        """Finish the file."""
        if self._writer is not None:
            self._writer.release()
