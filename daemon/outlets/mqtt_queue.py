"""Status outlet helper: the MQTT outlet's event queue, sent in order one event at a time; imports no paho.

Contract: `put()` never blocks: it appends to a bounded queue (past `max_queued` the oldest is dropped and
counted). While the link is up, a sender thread hands the oldest event to `publish` (which returns its
message id) and the next one only after `acknowledged(mid)` reported the broker's acknowledgement of it. An
event handed over while the link was already dead without a word (a half-open connection, found later by the
keep-alive) is sent again by the MQTT client on reconnect, ahead of the queue, so no event is lost or
reordered; only that one event may arrive twice, as QoS 1 allows.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

Publish = Callable[[str, str], int]  # (topic, payload) -> message id
_NO_MID = 0  # MQTT message ids start at 1


@dataclass(frozen=True, slots=True)
class _Event:
    topic: str
    payload: str


class EventQueue:
    """Events waiting for the broker, and the one it has not acknowledged yet."""

    def __init__(self, max_queued: int) -> None:
        if max_queued < 1:
            raise ValueError(f"the MQTT queue must hold at least one event (got {max_queued})")
        self._max = max_queued
        self._changed = (
            threading.Condition()
        )  # never held while publishing: the client calls back under its own lock
        self._pending: deque[_Event] = deque()
        self._in_flight: int | None = (
            None  # the message id of the unacknowledged event; _NO_MID: being handed over
        )
        self._acked: set[int] = set()  # ids acknowledged while an event was in flight
        self._dropped = 0
        self._up = False
        self._stopped = False
        self._thread: threading.Thread | None = None

    @property
    def dropped(self) -> int:
        """Events dropped since the link last came up."""
        return self._dropped

    @property
    def unacknowledged(self) -> int:
        """Events queued, or sent and not yet acknowledged."""
        with self._changed:
            return len(self._pending) + (self._in_flight is not None)

    def start(self, publish: Publish) -> None:
        """Start the sender thread; it sends nothing before `link_up()`."""
        self._thread = threading.Thread(
            target=self._send_all, args=(publish,), name="mqtt-events", daemon=True
        )
        self._thread.start()

    def put(self, topic: str, payload: str) -> None:
        """Queue an event; returns at once."""
        with self._changed:
            if len(self._pending) >= self._max:
                self._pending.popleft()
                self._dropped += 1
                if self._dropped == 1:
                    logger.warning("MQTT queue full (%d events): dropping the oldest", self._max)
            self._pending.append(_Event(topic, payload))
            self._changed.notify_all()

    def link_up(self) -> tuple[int, int]:
        """Let events flow; returns how many are queued, and how many were dropped while the link was down."""
        with self._changed:
            self._up = True
            dropped, self._dropped = self._dropped, 0
            self._changed.notify_all()
            return len(self._pending), dropped

    def link_down(self) -> None:
        """Hold events back until the link is up again."""
        with self._changed:
            self._up = False

    def acknowledged(self, mid: int) -> None:
        """The broker acknowledged message MID (any message: the queue picks out its own)."""
        with self._changed:
            if self._in_flight is not None:
                self._acked.add(mid)
                self._changed.notify_all()

    def drain(self, timeout: float) -> None:
        """Wait up to TIMEOUT seconds for every event to be acknowledged, if the link is up."""
        with self._changed:
            self._changed.wait_for(
                lambda: not self._up or (not self._pending and self._in_flight is None), timeout
            )

    def stop(self) -> None:
        """Stop the sender thread; events not yet acknowledged stay unsent."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join()

    def _send_all(self, publish: Publish) -> None:
        while not self._stopped:
            try:
                self._send_one(publish)
            except Exception:
                logger.exception("MQTT event not sent")
                with self._changed:
                    self._in_flight = None

    def _send_one(self, publish: Publish) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._stopped or (self._up and bool(self._pending)))
            if self._stopped:
                return
            event = self._pending.popleft()
            self._in_flight, self._acked = _NO_MID, set()  # acknowledgements are recorded from here on
        mid = publish(
            event.topic, event.payload
        )  # went down meanwhile: the client keeps it for the reconnect
        with self._changed:
            self._in_flight = mid
            self._changed.wait_for(lambda: mid in self._acked or self._stopped)
            if mid in self._acked:  # else stopped: it stays counted as unacknowledged
                self._in_flight = None
            self._changed.notify_all()
