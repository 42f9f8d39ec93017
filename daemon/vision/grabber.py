"""Capture stage: reads a live source on its own thread, keeps its newest frame, reopens it when it fails.

Contract: `start()` never raises for an absent camera. `latest(after, timeout)` hands out only the newest
frame (no backlog, so latency stays one frame), re-stamped with the grabber's sequence number (strictly
increasing across reopens) and the clock at capture. A source that raises, ends, or delivers nothing for
`stall_seconds` is lost: one WARNING with the reason, reopening with exponential backoff (attempts at DEBUG),
and one INFO with how long it was away once frames flow again. No message carries URL credentials.

Threads: a supervisor opens sources and watches for stalls; every opened source gets its own reader thread
that alone reads and closes it, since a capture is not safe to use from two threads. A reader hung inside a
driver read is abandoned, never joined: its late frames are dropped by generation number, and it closes its
source if the read ever returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    sleep_using_event,
    stop_when_event_set,
    wait_exponential,
)

from daemon.models import CameraStatus, Frame
from daemon.redact import mask_url
from daemon.vision.camera import CameraConfig, FrameSource, Opener

logger = logging.getLogger(__name__)

_JOIN_SECONDS = 1.0  # stop() waits this long in all for its threads before abandoning a hung read
_WATCH_SECONDS = 0.5  # longest the supervisor sleeps between stall checks, so an injected clock is seen


def _one_line(err: BaseException) -> str:
    """The reason an error gives, on one line and without credentials."""
    text = str(err).strip().splitlines()
    return mask_url(text[0] if text else type(err).__name__)


class FrameGrabber:
    """The capture thread of one camera: the newest frame, the link's status, and reopening when it fails."""

    def __init__(
        self, config: CameraConfig, opener: Opener, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._config, self._opener, self._clock = config, opener, clock
        self._name = mask_url(config.source)
        self._stopping = threading.Event()
        self._retrying = Retrying(
            sleep=sleep_using_event(self._stopping),  # stop() cuts a backoff wait short
            stop=stop_when_event_set(self._stopping),
            wait=wait_exponential(multiplier=0.5, max=30),
            retry=retry_if_exception_type(Exception),
            before=self._before_attempt,
            before_sleep=self._after_failed_attempt,
            retry_error_callback=lambda _state: None,
        )
        self._supervisor: threading.Thread | None = None
        # Everything below is guarded by _cond.
        self._cond = threading.Condition()
        self._reader: threading.Thread | None = None
        self._latest: Frame | None = None
        self._sequence = 0
        self._generation = 0  # the open source; frames and failures of older ones are ignored
        self._last_frame_at = 0.0  # clock of the newest frame, or of the open before the first one
        self._failure: str | None = None  # why the open source failed, set by its reader
        self._status: CameraStatus = "reconnecting"
        self._reason = "not opened yet"
        self._lost_at: float | None = None  # set while an outage lasts
        self._outages = 0

    @property
    def status(self) -> CameraStatus:
        """The link: "ok" while frames flow, "lost" while waiting to reopen, "reconnecting" while opening."""
        with self._cond:
            return self._status

    @property
    def reason(self) -> str:
        """Why the camera is not ok, one line; empty when it is."""
        with self._cond:
            return self._reason

    @property
    def outages(self) -> int:
        """Outages since start: a camera that drops out for a moment now and then shows here."""
        with self._cond:
            return self._outages

    def start(self) -> None:
        """Open the source on a thread; an absent camera is reported lost and retried, never raised."""
        if self._supervisor is not None:
            raise RuntimeError("the frame grabber was already started")
        self._supervisor = threading.Thread(target=self._supervise, name="camera-supervisor", daemon=True)
        self._supervisor.start()

    def stop(self) -> None:
        """Close the source and join the threads; a read hung in the driver is abandoned."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        with self._cond:
            self._generation += 1  # the reader closes its source after its current read
            reader = self._reader
            self._cond.notify_all()
        deadline = time.monotonic() + _JOIN_SECONDS
        threads = [thread for thread in (self._supervisor, reader) if thread is not None]
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in threads):
            # An open or a read blocked in the driver: a daemon thread, so it cannot hold up the exit.
            logger.warning("camera %s: a call is hung in the driver; its thread is abandoned", self._name)

    def latest(self, after: int, timeout: float) -> Frame | None:
        """The newest frame whose index is above AFTER, waiting at most TIMEOUT seconds; None if none came."""
        with self._cond:
            self._cond.wait_for(lambda: self._latest is not None and self._latest.index > after, timeout)
            frame = self._latest
        return frame if frame is not None and frame.index > after else None

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            try:
                source: FrameSource | None = self._retrying(self._open)
                if source is None:  # stopped while opening
                    return
                reason = self._watch(source)
                if reason is None:  # stopped while watching
                    return
                self._lose(reason)
            except Exception:
                # A bug here must not end capture for good: log it, count it as an outage and start over.
                logger.exception("camera %s: the capture supervisor failed", self._name)
                self._lose("internal error in the capture supervisor")
                self._stopping.wait(1.0)

    def _open(self) -> FrameSource | None:
        if self._stopping.is_set():
            return None
        return self._opener(self._config)

    def _before_attempt(self, state: RetryCallState) -> None:
        if self._stopping.is_set():  # a backoff wait cut short by stop(): _open will not try
            return
        logger.debug("camera %s: open attempt %d", self._name, state.attempt_number)
        with self._cond:
            if self._status != "ok":
                self._status = "reconnecting"

    def _after_failed_attempt(self, state: RetryCallState) -> None:
        err = state.outcome.exception() if state.outcome is not None else None
        reason = _one_line(err) if err is not None else "cannot open"
        if not self._lose(reason):
            logger.debug(
                "camera %s: open attempt %d failed (%s); next in %.1f s",
                self._name,
                state.attempt_number,
                reason,
                state.upcoming_sleep,
            )

    def _lose(self, reason: str) -> bool:
        """Mark the camera lost, orphaning the open source; True when this starts an outage (and logs it)."""
        with self._cond:
            self._generation += 1
            starts = self._lost_at is None
            if starts:
                # Away since the last frame: a stall is noticed only stall_seconds after it began.
                self._lost_at = self._last_frame_at if self._status == "ok" else self._clock()
                self._outages += 1
            self._status, self._reason = "lost", reason
        if starts:
            logger.warning("camera %s lost: %s", self._name, reason)
        return starts

    def _watch(self, source: FrameSource) -> str | None:
        """Read SOURCE on a new thread until it fails (the reason) or the grabber stops (None)."""
        with self._cond:
            if self._stopping.is_set():
                source.close()  # no reader owns it yet
                return None
            self._generation += 1
            generation = self._generation
            self._failure = None
            self._last_frame_at = self._clock()
            self._reader = threading.Thread(
                target=self._read, args=(source, generation), name="camera-reader", daemon=True
            )
            self._reader.start()
        return self._until_lost()

    def _until_lost(self) -> str | None:
        """Wait until the open source fails or stalls (the reason) or the grabber stops (None)."""
        stall = self._config.stall_seconds
        with self._cond:
            while not self._stopping.is_set():
                if self._failure is not None:
                    return self._failure
                idle = self._clock() - self._last_frame_at
                if idle >= stall:
                    return f"no frame for {idle:.1f} s"
                self._cond.wait(min(stall - idle, _WATCH_SECONDS))
            return None

    def _read(self, source: FrameSource, generation: int) -> None:
        try:
            while True:
                try:
                    frame = source.read()
                except Exception as err:  # any read failure ends this source; it is reopened
                    logger.debug("camera %s: read failed", self._name, exc_info=True)
                    self._fail(generation, _one_line(err))
                    return
                if frame is None:
                    self._fail(generation, "the source ended")
                    return
                if not self._deliver(generation, frame):
                    return
        finally:
            try:
                source.close()
            except Exception:  # a source that cannot close is already given up
                logger.debug("camera %s: close failed", self._name, exc_info=True)

    def _fail(self, generation: int, reason: str) -> None:
        with self._cond:
            if generation == self._generation:
                self._failure = reason
                self._cond.notify_all()

    def _deliver(self, generation: int, frame: Frame) -> bool:
        """Keep FRAME as the newest; False when its source was given up meanwhile."""
        away: float | None = None
        with self._cond:
            if generation != self._generation:
                return False
            now = self._clock()
            self._sequence += 1
            self._latest = Frame(self._sequence, now, frame.image)
            self._last_frame_at = now
            if self._status != "ok":
                away = None if self._lost_at is None else now - self._lost_at
                self._status, self._reason, self._lost_at = "ok", "", None
            self._cond.notify_all()
        if away is not None:
            logger.info("camera %s recovered after %.1f s", self._name, away)
        return True
