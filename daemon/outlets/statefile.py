"""Status outlet: the state file that `putt-daemon status` reads, and the reader for it.

Contract: `StateFile` is an `EventSink`. `state()` only stores the newest `ServiceState` and wakes the
writer thread (latest value only, nothing queues up), so the vision loop never waits for the disk. The
writer replaces the file atomically (`write_text_atomic`: a reader sees the old or the new file, never a torn
one) at most every `interval` seconds, and once more on `close()` with the final state. A write error (full
disk, permissions) is logged once at WARNING and retried at the next interval, never raised into the caller;
its recovery is logged once at INFO. The JSON holds every `ServiceState` field plus `interval`, so a reader
can tell a stale file from a quiet service, and `pid_started`: `read_state` calls the file stale past
`3 * interval + 2` seconds and checks that the writing process, that pid started at that time, still exists.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from daemon.atomicfile import write_text_atomic
from daemon.models import PuttEvent, ServiceState, Session

if TYPE_CHECKING:  # annotations only: `putt-daemon status` imports this module and should start quickly
    from daemon.delivery.reports import SessionReport

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 2.0
RETRY_PAUSE = 1.0  # seconds between attempts while writes fail, even with a zero interval
STALE_GRACE = 2.0  # seconds on top of three missed writes before a reader calls the file stale


def state_json(state: ServiceState, interval: float) -> str:
    """The state file's text for STATE."""
    data: dict[str, object] = dataclasses.asdict(state)
    data["interval"] = interval
    data["pid_started"] = process_started(state.pid)
    return json.dumps(data, indent=2) + "\n"


@functools.lru_cache(maxsize=4)
def _own_start(pid: int) -> int | None:
    return _read_start(pid)


def process_started(pid: int) -> int | None:
    """When process PID started, in clock ticks since boot (Linux `/proc`), or None where that is unknown.

    With the pid, it names one process: a pid the kernel handed to another process after ours died has
    another start time, so `status` does not report it and `snapshot` does not signal it.
    """
    return _own_start(pid) if pid == os.getpid() else _read_start(pid)


def _read_start(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        # The command name (field 2) may hold spaces and brackets: count from the last ')'.
        return int(text[text.rindex(")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


STATE_FILE = "status.json"  # under the state folder


class StateFile:
    """Keeps PATH holding the service's newest state, written on a thread of its own."""

    def __init__(self, path: Path, *, interval: float = DEFAULT_INTERVAL) -> None:
        if not interval >= 0:
            raise ValueError(f"state file interval must be >= 0 s (got {interval})")
        self._path = path
        self._interval = interval
        self._changed = threading.Condition()
        self._latest: ServiceState | None = None
        self._dirty = False
        self._closing = False
        self._failing = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the writer thread."""
        if self._thread is not None:
            raise RuntimeError("state file writer already started")
        self._thread = threading.Thread(target=self._run, name="state-file", daemon=True)
        self._thread.start()

    def putt(self, event: PuttEvent, session_id: str) -> None:
        """Nothing: the next state carries the new counts."""

    def session(self, session: Session, report: SessionReport) -> None:
        """Nothing: the next state carries the new counts."""

    def state(self, state: ServiceState) -> None:
        """Keep STATE as the one to write next; returns at once."""
        with self._changed:
            if self._closing:
                return
            self._latest = state
            self._dirty = True
            self._changed.notify()

    def close(self) -> None:
        """Write the final state now and stop the writer."""
        with self._changed:
            self._closing = True
            self._changed.notify()
        if self._thread is not None:
            self._thread.join()
            return
        final = self._take()  # never started: write the final state from here
        if final is not None:
            self._write(final)

    def _take(self) -> ServiceState | None:
        """The state to write, if one is pending; marks it taken."""
        with self._changed:
            if not self._dirty:
                return None
            self._dirty = False
            return self._latest

    def _run(self) -> None:
        last_write, pause = -math.inf, self._interval
        while True:
            with self._changed:
                while not self._closing:
                    due = last_write + pause - time.monotonic()
                    if self._dirty and due <= 0:
                        break
                    self._changed.wait(due if self._dirty else None)
                closing = self._closing
            pending = self._take()
            if pending is not None:
                try:
                    written = self._write(pending)
                except Exception:  # the top of the writer thread: keep the service's status alive
                    logger.exception("writing the state file %s failed", self._path)
                    written = False
                last_write = time.monotonic()
                pause = self._interval if written else max(self._interval, RETRY_PAUSE)
                if not written and not closing:
                    self._retry(pending)
            if closing:
                return

    def _retry(self, state: ServiceState) -> None:
        """Write STATE again at the next interval, unless a newer one came in meanwhile."""
        with self._changed:
            if not self._dirty:
                self._latest = state
                self._dirty = True

    def _write(self, state: ServiceState) -> bool:
        """Write STATE to the file; log a failure or recovery once. True when it was written."""
        try:
            write_text_atomic(self._path, state_json(state, self._interval))
        except OSError as err:
            if not self._failing:
                self._failing = True
                logger.warning("cannot write the state file %s: %s", self._path, err)
            return False
        if self._failing:
            self._failing = False
            logger.info("the state file %s is written again", self._path)
        return True


@dataclass(frozen=True, slots=True)
class StateReading:
    """What `read_state` found: the state as written, its age in seconds, and why it cannot be trusted."""

    state: dict[str, object] | None
    age: float | None
    problem: str | None


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists but belongs to another user
        return True
    return True


def _load(path: Path) -> dict[str, object] | str:
    """The JSON object in the file at PATH, or why there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return f"no state file at {path}: the service is not running"
    except OSError as err:
        return f"state file unreadable: {err}"
    try:
        data = json.loads(text)
    except ValueError as err:
        return f"state file unreadable: {path}: {err}"
    if not isinstance(data, dict):
        return f"state file unreadable: {path} does not hold a JSON object"
    return data


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _writer_gone(pid: int, started: object) -> str | None:
    """Why the process that wrote the file is no longer there, or None while it is."""
    if not _process_exists(pid):
        return f"process {pid} is not running"
    if isinstance(started, int) and process_started(pid) not in (started, None):
        return f"process {pid} is not running (another process has its pid now)"
    return None


def read_state(path: Path, now: float) -> StateReading:
    """Read the state file at PATH as of NOW (UTC epoch seconds) and judge whether the service is running."""
    state = _load(path)
    if isinstance(state, str):
        return StateReading(None, None, state)
    updated_at, pid = _number(state.get("updated_at")), state.get("pid")
    if updated_at is None:
        return StateReading(state, None, f"state file unreadable: {path} has no updated_at time")
    age = now - updated_at
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:  # kill(0 or -1, 0) means a group
        return StateReading(state, age, f"state file unreadable: {path} has no valid pid (got {pid!r})")
    gone = _writer_gone(pid, state.get("pid_started"))
    if gone is not None:
        return StateReading(state, age, gone)
    interval = _number(state.get("interval"))
    if age > 3 * (DEFAULT_INTERVAL if interval is None else interval) + STALE_GRACE:
        return StateReading(state, age, f"state file is {age:.0f} s old: the service is not running or hung")
    return StateReading(state, age, None)
