"""The vision pipeline: a frame in, what it showed and the putts it decided out.

motion gate -> detector -> tracker -> classifier. While nothing moves, the gate lets the last detections stand
instead of running the network, during a putt too: a ball at rest stays where it was seen, the classifier's
timers run on the frames' times, and a ball that moves, drops or vanishes changes the picture. Grouping putts
into sessions and everything after that is the service's job; nothing here touches the disk or the network.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import cv2

from daemon.models import BallObservation, Detections, Frame, PuttEvent
from daemon.vision.classifier import PuttClassifier
from daemon.vision.motion_gate import MotionGate
from daemon.vision.tracker import BallTracker


class Detector(Protocol):
    """Finds balls in a frame."""

    def detect(self, frame: Frame) -> Detections:
        """Every ball in FRAME, in frame pixels."""
        ...

    def close(self) -> None:
        """Release the model."""
        ...


@dataclass(frozen=True, slots=True)
class PipelineStep:
    """What one frame produced."""

    detections: Detections
    detected: bool  # False when the motion gate reused the previous detections
    inference_seconds: float  # time the detector took on this frame (0 when it did not run)
    observation: BallObservation
    putts: tuple[PuttEvent, ...]


class VisionPipeline:
    """Runs one frame at a time through the stages it was given."""

    def __init__(
        self, *, detector: Detector, gate: MotionGate | None, tracker: BallTracker, classifier: PuttClassifier
    ) -> None:
        # Each stage works on one frame, too little for OpenCV's worker pool to pay off, and its workers
        # spin after every call: on a 2-core box that costs more CPU than the work itself.
        cv2.setNumThreads(1)
        self._detector = detector
        self._gate = gate
        self._last: Detections | None = None
        self._tracker = tracker
        self._classifier = classifier

    @property
    def putt_in_progress(self) -> bool:
        return self._classifier.putt_in_progress

    def process(self, frame: Frame) -> PipelineStep:
        """Detect, track and classify one frame."""
        started = time.perf_counter()
        detections, detected = self._detect(frame)
        took = time.perf_counter() - started if detected else 0.0
        observation = self._tracker.update(detections)
        putts = tuple(self._classifier.update(observation))
        return PipelineStep(detections, detected, took, observation, putts)

    def _detect(self, frame: Frame) -> tuple[Detections, bool]:
        gate, last = self._gate, self._last
        if gate is None or last is None or gate.moved(frame):
            self._last = self._detector.detect(frame)
            if gate is not None:
                gate.detected(frame)
            return self._last, True
        return Detections(frame.index, frame.timestamp, last.items), False

    def flush(self, t: float) -> tuple[PuttEvent, ...]:
        """Decide the putt in progress now (end of input, shutdown, a restart of the stages)."""
        return tuple(self._classifier.flush(t))

    def close(self) -> None:
        """Release the detector."""
        self._detector.close()
