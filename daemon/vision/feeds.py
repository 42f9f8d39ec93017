"""Frame feeds: how the service's vision loop gets its next frame, live or replayed.

`LiveFeed` (the `run` service) takes the newest frame from a capture thread and never queues: a slow frame
costs the frames that arrived meanwhile, never latency. Its clock is the monotonic clock, so a wall-clock jump
(NTP at boot on a box with no real-time clock) neither ends nor stretches a session. `ReplayFeed` (`demo`,
`process`) reads every frame of a finite source in order as fast as the machine allows; its clock is the
frames' own timestamps, so the result does not depend on the machine's speed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from daemon.models import CameraStatus, Frame
from daemon.vision.camera import CameraConfig, FrameSource, Opener
from daemon.vision.grabber import FrameGrabber


class FrameFeed(Protocol):
    """Where the vision loop's frames come from."""

    def start(self) -> None:
        """Open the source."""
        ...

    def next(self, timeout: float) -> Frame | None:
        """The next frame, or None when none came within TIMEOUT seconds (or the feed ended)."""
        ...

    @property
    def ended(self) -> bool:
        """A finite source has delivered its last frame."""
        ...

    @property
    def camera(self) -> CameraStatus:
        """ok, lost or reconnecting."""
        ...

    @property
    def reason(self) -> str:
        """Why the camera is not ok (empty when it is)."""
        ...

    @property
    def outages(self) -> int:
        """Times the camera was lost since start."""
        ...

    def now(self) -> float:
        """The session clock, in the frames' time base."""
        ...

    def stop(self) -> None:
        """Close the source."""
        ...


class LiveFeed:
    """The newest frame of a camera, stamped with the monotonic clock."""

    def __init__(
        self, config: CameraConfig, opener: Opener, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._grabber = FrameGrabber(config, opener, clock=clock)
        self._clock = clock
        self._last_index = -1

    def start(self) -> None:
        self._grabber.start()

    def next(self, timeout: float) -> Frame | None:
        frame = self._grabber.latest(self._last_index, timeout)
        if frame is not None:
            self._last_index = frame.index
        return frame

    @property
    def ended(self) -> bool:
        return False

    @property
    def camera(self) -> CameraStatus:
        return self._grabber.status

    @property
    def reason(self) -> str:
        return self._grabber.reason

    @property
    def outages(self) -> int:
        return self._grabber.outages

    def now(self) -> float:
        return self._clock()

    def stop(self) -> None:
        self._grabber.stop()


class ReplayFeed:
    """Every frame of a finite source, in order, on the source's own clock."""

    def __init__(self, open_source: Callable[[], FrameSource]) -> None:
        self._open = open_source
        self._source: FrameSource | None = None
        self._ended = False
        self._last_time = 0.0

    def start(self) -> None:
        self._source = self._open()

    def next(self, timeout: float) -> Frame | None:  # noqa: ARG002  # a file never makes the loop wait
        if self._source is None or self._ended:
            return None
        frame = self._source.read()
        if frame is None:
            self._ended = True
            return None
        self._last_time = frame.timestamp
        return frame

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def camera(self) -> CameraStatus:
        return "ok"

    @property
    def reason(self) -> str:
        return ""

    @property
    def outages(self) -> int:
        return 0

    def now(self) -> float:
        return self._last_time

    def stop(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None
