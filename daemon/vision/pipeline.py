"""The vision pipeline: a frame in, the putts and finished sessions it produced out.

motion gate -> detector -> tracker -> classifier -> session keeper. While nothing moves and no putt is
under way, the gate lets the last detections stand instead of running the network. Nothing here touches the
network: the `process` command and the service hand its sessions to the reports and the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from daemon.delivery.sessions import SessionKeeper
from daemon.models import BallObservation, Detections, Frame, PuttEvent, Session
from daemon.vision.classifier import PuttClassifier
from daemon.vision.motion_gate import MotionGate
from daemon.vision.tracker import BallTracker


class Detector(Protocol):
    """Finds balls in a frame."""

    def detect(self, frame: Frame) -> Detections:
        """Every ball in FRAME, in frame pixels."""
        ...


@dataclass(frozen=True, slots=True)
class PipelineStep:
    """What one frame produced."""

    detections: Detections
    detected: bool  # False when the motion gate reused the previous detections
    observation: BallObservation
    putts: tuple[PuttEvent, ...]
    sessions: tuple[Session, ...]


class VisionPipeline:
    """Runs one frame at a time through the stages it was given."""

    def __init__(
        self,
        *,
        detector: Detector,
        gate: MotionGate | None,
        tracker: BallTracker,
        classifier: PuttClassifier,
        sessions: SessionKeeper,
        epoch_offset: float,
    ) -> None:
        self._detector = detector
        self._gate = gate
        self._last: Detections | None = None
        self._tracker = tracker
        self._classifier = classifier
        self._sessions = sessions
        self._epoch_offset = epoch_offset

    def process(self, frame: Frame) -> PipelineStep:
        """Detect, track, classify and group one frame."""
        detections, detected = self._detect(frame)
        observation = self._tracker.update(detections)
        putts = tuple(self._classifier.update(observation))
        finished = self._record(putts)
        if not self._classifier.putt_in_progress:
            idle = self._sessions.tick(frame.timestamp)
            if idle is not None:
                finished.append(idle)
        return PipelineStep(detections, detected, observation, putts, tuple(finished))

    def _detect(self, frame: Frame) -> tuple[Detections, bool]:
        gate, last = self._gate, self._last
        if gate is None or last is None or self._classifier.putt_in_progress or gate.moved(frame):
            self._last = self._detector.detect(frame)
            if gate is not None:
                gate.detected(frame)
            return self._last, True
        return Detections(frame.index, frame.timestamp, last.items), False

    def finish(self, t: float, reason: str) -> tuple[list[PuttEvent], list[Session]]:
        """Decide the putt in progress and close the open session (end of input, shutdown, command)."""
        putts = self._classifier.flush(t)
        finished = self._record(tuple(putts))
        last = self._sessions.end(reason)
        if last is not None:
            finished.append(last)
        return putts, finished

    def _record(self, putts: tuple[PuttEvent, ...]) -> list[Session]:
        finished = []
        for putt in putts:
            split = self._sessions.add_putt(putt, self._epoch_offset)
            if split is not None:
                finished.append(split)
        return finished
