"""Status outlet: the systemd notify protocol (READY, STATUS, WATCHDOG, RELOADING, STOPPING).

Contract: `SystemdNotifier.from_environment` reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from the
mapping it is given (the CLI passes `os.environ`); without NOTIFY_SOCKET every call does nothing. Datagrams
go through `systemd.daemon.notify` (sd_notify(3)). `heartbeat` is called by the vision loop after
every iteration and sends WATCHDOG=1 at most every third of the watchdog interval, so a stalled loop stops the
pings and systemd restarts the service. STATUS= is sent only when its text changes. As an `EventSink`, each
`ServiceState` becomes a one-line STATUS. A failure to send is logged once at WARNING (and its recovery once
at INFO), never raised: systemd going away must not stop the loop.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from systemd import daemon as sd_daemon

from daemon.models import PuttEvent, ServiceState, Session

if TYPE_CHECKING:  # annotations only: the report builder stays out of this outlet's imports
    from daemon.delivery.reports import SessionReport

logger = logging.getLogger(__name__)

MAX_PROBLEMS_SHOWN = 2  # STATUS= is one line in `systemctl status`; the state file has them all


def describe(state: ServiceState) -> str:
    """STATE as one short line, e.g. `camera ok, 29.8 fps, 4.1 ms inference, session S: 5 putts, 3 makes`."""
    parts = [f"camera {state.camera}"]
    if state.camera == "ok":
        parts += [f"{state.fps:.1f} fps", f"{state.inference_ms:.1f} ms inference"]
    if state.session is not None:
        progress = state.session
        parts.append(f"session {progress.session_id}: {progress.putts} putts, {progress.makes} makes")
    else:
        parts.append(state.status.replace("_", " "))
    parts.append(f"{state.putts} putts since start")
    line = ", ".join(parts)
    if state.problems:
        shown = "; ".join(state.problems[:MAX_PROBLEMS_SHOWN])
        more = len(state.problems) - MAX_PROBLEMS_SHOWN
        line += f" - {shown}" + (f" (+{more} more)" if more > 0 else "")
    return line


def _watchdog_interval(environ: Mapping[str, str]) -> float | None:
    """The watchdog interval in seconds systemd asks this process for, or None."""
    usec = environ.get("WATCHDOG_USEC")
    if usec is None:
        return None
    pid = environ.get("WATCHDOG_PID")
    if pid is not None and pid != str(os.getpid()):
        logger.info("WATCHDOG_PID=%s is not this process (%d): no watchdog pings", pid, os.getpid())
        return None
    try:
        value = int(usec)
    except ValueError:
        logger.warning("WATCHDOG_USEC=%r is not a number of microseconds: no watchdog pings", usec)
        return None
    if value <= 0:
        logger.warning("WATCHDOG_USEC=%r is not positive: no watchdog pings", usec)
        return None
    return value / 1_000_000


class SystemdNotifier:
    """Tells systemd the service's lifecycle, status line and liveness."""

    def __init__(
        self,
        *,
        notify_socket: str | None,
        watchdog_interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._socket = notify_socket
        self._ping_every = watchdog_interval / 3 if watchdog_interval and notify_socket else None
        self._watchdog_interval = watchdog_interval
        self._clock = clock
        self._last_ping: float | None = None
        self._status: str | None = None
        self._failing = False
        self._lock = threading.Lock()

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str], *, clock: Callable[[], float] = time.monotonic
    ) -> SystemdNotifier:
        """A notifier for what systemd put in ENVIRON (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID)."""
        notify_socket = environ.get("NOTIFY_SOCKET") or None
        interval = _watchdog_interval(environ) if notify_socket else None
        return cls(notify_socket=notify_socket, watchdog_interval=interval, clock=clock)

    @property
    def watchdog_interval(self) -> float | None:
        """The watchdog timeout systemd enforces, in seconds; None when there is none."""
        return self._watchdog_interval

    def ready(self) -> None:
        """Start-up is done: READY=1, with the current status line."""
        with self._lock:
            message = "READY=1" if self._status is None else f"READY=1\nSTATUS={self._status}"
            self._send(message)

    def status(self, text: str) -> None:
        """Show TEXT in `systemctl status`; sent only when it changed."""
        line = " ".join(text.splitlines())  # a newline would start another assignment in the datagram
        with self._lock:
            if line == self._status:
                return
            self._status = line
            self._send(f"STATUS={line}")

    def heartbeat(self) -> None:
        """The vision loop went round once: WATCHDOG=1, at most every third of the watchdog interval."""
        if self._ping_every is None:
            return
        now = self._clock()
        if self._last_ping is not None and now - self._last_ping < self._ping_every:
            return
        self._last_ping = now  # even if sending fails: a broken socket must not cost a syscall per frame
        with self._lock:
            self._send("WATCHDOG=1")

    def reloading(self) -> None:
        """A reload started: RELOADING=1 with the CLOCK_MONOTONIC time Type=notify-reload requires."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        with self._lock:
            self._send(f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def reloaded(self) -> None:
        """The reload finished: READY=1 again."""
        self.ready()

    def stopping(self) -> None:
        """Shutdown started: STOPPING=1."""
        with self._lock:
            self._send("STOPPING=1")

    def putt(self, event: PuttEvent, session_id: str) -> None:
        """Nothing: the next state carries the new counts."""

    def session(self, session: Session, report: SessionReport) -> None:
        """Nothing: the next state carries the new counts."""

    def state(self, state: ServiceState) -> None:
        """Show STATE as the status line, when the line changed."""
        self.status(describe(state))

    def close(self) -> None:
        """Nothing to release: every datagram goes out on its own socket."""

    def _send(self, message: str) -> None:
        """Send MESSAGE; the caller holds the lock. Never raises."""
        if self._socket is None:
            return
        try:
            sd_daemon.notify(message)
        except OSError as err:
            if not self._failing:
                self._failing = True
                logger.warning("cannot notify systemd at %s: %s", self._socket, err)
            return
        if self._failing:
            self._failing = False
            logger.info("notifying systemd at %s works again", self._socket)
