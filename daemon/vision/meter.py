"""Loop meter: what the vision loop did lately, for the status outlets (frames/s, inference time, gate share).

Windows are bounded deques, so a service that runs for months holds the same few kilobytes.
"""

from __future__ import annotations

import statistics
from collections import deque

from daemon.vision.pipeline import PipelineStep

WINDOW = 300  # frames: ten seconds at 30 frames/s


class LoopMeter:
    """Counts frames, detector runs and their time over the last WINDOW frames."""

    def __init__(self, window: int = WINDOW) -> None:
        self._times: deque[float] = deque(maxlen=window)
        self._detected: deque[bool] = deque(maxlen=window)
        self._inference: deque[float] = deque(maxlen=window)
        self.frames = 0

    def add(self, step: PipelineStep, now: float) -> None:
        """One frame went through the loop at NOW (monotonic seconds)."""
        self.frames += 1
        self._times.append(now)
        self._detected.append(step.detected)
        if step.detected:
            self._inference.append(step.inference_seconds)

    def fps(self, now: float) -> float:
        """Frames per second over the window; 0 once frames stopped for two seconds."""
        if len(self._times) < 2 or now - self._times[-1] > 2.0:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0

    def inference_ms(self) -> float:
        """Median detector time of the window, in milliseconds."""
        return 1000 * statistics.median(self._inference) if self._inference else 0.0

    def gate_skipped(self) -> float:
        """Share of the window's frames on which the detector did not run."""
        if not self._detected:
            return 0.0
        return 1 - sum(self._detected) / len(self._detected)
