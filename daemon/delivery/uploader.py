"""Uploader stage: carries queued session reports to the web API, whatever the network or the server does.

Contract: the uploader reads the queue through `UploadQueue` (the spool) and makes one POST per attempt with
its own `requests.Session`, explicit (connect, read) timeouts and TLS always verified (`ca_bundle` is passed
as `verify`). Every request of a session carries the same body and `Idempotency-Key: <session_id>`.
Outcomes (the shared README, "Upload API"):

- 2xx with a JSON object whose `success` is not false: `mark_sent` with the server's session id.
- 400, 404, 405, 413, 422, an unusable report, or `max_server_errors` identical server errors (500, other
  unexpected answers, 2xx with `success: false`) in a row: `mark_dead` with the reason; the queue goes on.
- 401, 403: the settings are wrong, not the session: the whole queue pauses (status `auth_failed`) until
  `reconfigure()` or `retry_max_delay`; nothing is dead-lettered.
- The link fails (no answer, timeout, TLS, a cut response, 502/503/504, a redirect, a 2xx that is not the
  API's JSON) or the server asks to wait (429, 503 with `Retry-After`): the whole queue waits, the oldest
  session probes first, so order is kept; logged once when the link goes down and once when it is back.
- Any other failure waits for that session's own backoff. Its first failure holds the queue for that wait
  (a server blip keeps sessions in order); from its second in a row the younger sessions go past it.

Waits are tenacity's full-jitter exponential backoff capped at `retry_max_delay`; `Retry-After` (seconds or
an HTTP date) is honoured up to the same cap. Schedules live in memory: after a restart every session is
tried at once. The queue logs each delivery and dead letter; the uploader logs the link going down and coming
back (once each), each retry and the auth pause (once). The token never reaches a log line, an outcome, the
queue or the status, even when a server echoes it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import requests

from daemon.delivery.upload_api import (
    BUSY_RECHECK,
    ENDPOINTS,
    MESSAGE_CHARS,
    AuthFailed,
    Dead,
    Delivered,
    DrainSummary,
    QueuedReport,
    Retry,
    Skipped,
    UploadConfig,
    UploadOutcome,
    UploadQueue,
    UploadStatus,
    backoff,
    config_problem,
    request_body,
    retry_after,
)
from daemon.delivery.upload_request import Kind, Verdict, post, prepare
from daemon.errors import SpoolError, UploadError

logger = logging.getLogger(__name__)

__all__ = [
    "BUSY_RECHECK",
    "ENDPOINTS",
    "MESSAGE_CHARS",
    "AuthFailed",
    "Dead",
    "Delivered",
    "DrainSummary",
    "QueuedReport",
    "Retry",
    "Skipped",
    "UploadConfig",
    "UploadOutcome",
    "UploadQueue",
    "UploadStatus",
    "Uploader",
    "backoff",
    "request_body",
    "retry_after",
]


@dataclass(slots=True)
class _Schedule:
    failures: int = 0
    next_at: float = 0.0
    last_error: str = ""
    repeats: int = 0  # identical counted errors in a row


@dataclass(slots=True)
class _State:
    schedules: dict[str, _Schedule] = field(default_factory=dict)
    hold_until: float = 0.0  # nothing is tried before this: link down, Retry-After, a first failure
    queue_failures: int = 0
    down_since: float | None = None
    auth_until: float | None = None
    unrecorded: dict[str, str] = field(default_factory=dict)  # delivered, but mark_sent failed
    in_flight: bool = False
    last_time: float | None = None
    last_result: str = ""
    pending: int = 0
    next_attempt: float | None = None


class Uploader:
    """Delivers the queue's sessions to the web API, on a worker thread or in the foreground.

    CLOCK (epoch seconds) times every schedule, `drain`'s deadline and the status; SLEEP is what `drain`
    waits with. The worker waits on its wake event instead, so `wake`, `reconfigure` and `stop` cut a wait
    short. Without SESSION the uploader makes its own and closes it in `stop`.
    """

    def __init__(
        self,
        config: UploadConfig,
        queue: UploadQueue,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._config = config
        self._queue = queue
        self._owns_session = session is None
        self._http = session if session is not None else requests.Session()
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()  # guards _state and _config
        self._attempt_lock = threading.Lock()  # one request at a time: drain and the worker share the session
        self._state = _State()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- public API ------------------------------------------------------------------------------------

    @property
    def status(self) -> UploadStatus:
        """The current state for the status outlets."""
        with self._lock:
            state = self._state
            if config_problem(self._config):
                name: Literal["idle", "uploading", "waiting", "auth_failed", "disabled"] = "disabled"
            elif state.auth_until is not None:
                name = "auth_failed"
            elif state.in_flight:
                name = "uploading"
            else:
                name = "waiting" if state.pending else "idle"
            next_attempt = state.next_attempt if state.pending else None
            return UploadStatus(name, state.last_time, state.last_result, state.pending, next_attempt)

    def start(self) -> None:
        """Start the background worker thread."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="uploader", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker; a request in flight is abandoned after TIMEOUT (the session stays queued)."""
        thread, self._thread = self._thread, None
        self._stopping.set()
        self._wake.set()
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("uploader still waiting for the API after %.1f s; leaving it", timeout)
                return
        if self._owns_session:
            self._http.close()

    def wake(self) -> None:
        """A session was queued: look at the queue now."""
        self._wake.set()

    def reconfigure(self, config: UploadConfig) -> None:
        """Use CONFIG from now on; every wait, an auth pause included, ends at once."""
        with self._lock:
            self._config = config
            resumed = self._state.auth_until is not None
            self._state = _State(unrecorded=self._state.unrecorded, pending=self._state.pending)
        if resumed:
            logger.info("upload settings changed; uploads resume")
        self._wake.set()

    def drain(self, *, deadline: float | None = None) -> DrainSummary:
        """Deliver what is pending now, sleeping through waits, until done, DEADLINE or an auth failure."""
        problem = config_problem(self._config)
        if problem:
            raise UploadError(f"cannot upload: {problem}")
        targets = {entry.session_id for entry in self._queue.pending()}
        counts = {"delivered": 0, "dead": 0, "skipped": 0}
        auth_failure: str | None = None
        while True:
            entries = [entry for entry in self._queue.pending() if entry.session_id in targets]
            now = self._clock()
            entry, due_at = self._pick(entries, now)
            if entry is None:
                if due_at is None or (deadline is not None and due_at > deadline):
                    break
                self._sleep(max(due_at - now, 0.0))
                continue
            if deadline is not None and now >= deadline:
                break
            outcome = self.upload_one(entry)
            if isinstance(outcome, AuthFailed):
                auth_failure = outcome.reason
                break
            if isinstance(outcome, Delivered | Dead | Skipped):
                counts[_DRAIN_COUNTS[type(outcome)]] += 1
                targets.discard(entry.session_id)
        remaining = sum(1 for entry in self._queue.pending() if entry.session_id in targets)
        return DrainSummary(**counts, remaining=remaining, auth_failure=auth_failure)

    def upload_one(self, entry: QueuedReport) -> UploadOutcome:
        """One attempt for ENTRY now, whatever its schedule; the queue and the schedule record the outcome."""
        session_id = entry.session_id
        with self._attempt_lock, self._queue.entry_lock(session_id) as mine:
            if not mine:
                return self._settle(session_id, Skipped("another process is uploading it"))
            # Re-read under the lock: another process may have delivered it since ENTRY was listed.
            current = next((e for e in self._queue.pending() if e.session_id == session_id), None)
            with self._lock:
                config = self._config
                server_id = self._state.unrecorded.get(session_id)
            if server_id is not None:  # delivered earlier; only the spool's record of it is missing
                return self._settle(session_id, Verdict("ok", server_id=server_id))
            body = prepare(config, current) if current is not None else Skipped("no longer pending")
            if not isinstance(body, bytes):
                return self._settle(session_id, body)
            with self._in_flight():
                verdict = post(self._http, config, session_id, body, self._clock)
            return self._settle(session_id, verdict)

    # -- bookkeeping -----------------------------------------------------------------------------------

    def _settle(self, session_id: str, result: Verdict | Skipped) -> UploadOutcome:
        """Record RESULT in the schedule, the log and the queue; return the outcome."""
        now = self._clock()
        notes = _Notes()
        with self._lock:
            if isinstance(result, Skipped):
                recheck = now + min(BUSY_RECHECK, self._config.retry_max_delay)
                self._state.schedules.setdefault(session_id, _Schedule()).next_at = recheck
                return result
            outcome = self._schedule(session_id, result, now, notes)
            self._state.last_time, self._state.last_result = now, _describe(session_id, outcome)
        notes.emit()
        try:
            if isinstance(outcome, Delivered):
                self._queue.mark_sent(session_id, outcome.server_id)
                with self._lock:
                    self._state.unrecorded.pop(session_id, None)
            elif isinstance(outcome, Dead):
                self._queue.mark_dead(session_id, outcome.reason)
            elif isinstance(outcome, Retry):
                self._queue.record_failure(session_id, outcome.reason)
        except (SpoolError, OSError) as err:
            with self._lock:
                if isinstance(outcome, Delivered):  # never upload it again, even if the spool cannot say so
                    self._state.unrecorded[session_id] = outcome.server_id
                if isinstance(outcome, Delivered | Dead):  # still pending: not again before the disk recovers
                    later = now + self._config.retry_max_delay
                    self._state.schedules.setdefault(session_id, _Schedule()).next_at = later
            # One line, not a traceback: the error names the cause.
            logger.error("session %s: the queue cannot record it: %s", session_id, err)  # noqa: TRY400
        return outcome

    def _schedule(self, session_id: str, verdict: Verdict, now: float, notes: _Notes) -> UploadOutcome:
        """Turn VERDICT into an outcome, update the waits, say what to log (called with the lock held)."""
        state, kind = self._state, verdict.kind
        self._note_link(kind, verdict.reason, now, notes)
        if kind not in ("link", "busy"):
            state.queue_failures = 0
            if kind != "auth":
                state.auth_until = None
        if kind in ("ok", "dead"):
            state.schedules.pop(session_id, None)
            if kind == "dead":
                notes.add(logging.DEBUG, "session %s dead-lettered: %s", session_id, verdict.reason)
                return Dead(verdict.reason)
            notes.add(logging.DEBUG, "session %s delivered (server id %s)", session_id, verdict.server_id)
            return Delivered(verdict.server_id)
        if kind == "auth":
            if state.auth_until is None:
                notes.add(
                    logging.ERROR, "upload API refused the credentials (%s); uploads paused", verdict.reason
                )
            state.auth_until = now + self._config.retry_max_delay
            return AuthFailed(verdict.reason)
        if kind in ("link", "busy"):
            return self._hold_queue(session_id, verdict, now, notes)
        schedule = state.schedules.setdefault(session_id, _Schedule())
        schedule.repeats = schedule.repeats + 1 if verdict.reason == schedule.last_error else 1
        schedule.last_error = verdict.reason
        if kind == "counted" and schedule.repeats >= self._config.max_server_errors:
            state.schedules.pop(session_id, None)
            reason = f"{verdict.reason} ({schedule.repeats} times in a row)"
            notes.add(logging.DEBUG, "session %s dead-lettered: %s", session_id, reason)
            return Dead(reason)
        schedule.failures += 1
        wait = backoff(schedule.failures, self._config.retry_max_delay)
        schedule.next_at = now + wait
        if schedule.failures == 1:  # maybe a blip of the server's: keep the order for this one wait
            state.hold_until = max(state.hold_until, schedule.next_at)
        notes.add(
            logging.WARNING,
            "session %s not accepted, next try in %.1f s: %s",
            session_id,
            wait,
            verdict.reason,
        )
        return Retry(wait, verdict.reason)

    def _note_link(self, kind: Kind, reason: str, now: float, notes: _Notes) -> None:
        """Log the link going down or coming back, once each (called with the lock held)."""
        state = self._state
        if kind == "link" and state.down_since is None:
            state.down_since = now
            notes.add(logging.WARNING, "upload API unreachable (%s); sessions wait in the queue", reason)
        elif kind != "link" and state.down_since is not None:  # any answer from the server: the link is back
            notes.add(logging.INFO, "upload API reachable again after %.0f s", now - state.down_since)
            state.down_since = None

    def _hold_queue(self, session_id: str, verdict: Verdict, now: float, notes: _Notes) -> Retry:
        """The link failed or the server asked to wait: nothing is tried before the wait is over."""
        state, cap = self._state, self._config.retry_max_delay
        state.queue_failures += 1
        wait = verdict.retry_after if verdict.retry_after is not None else backoff(state.queue_failures, cap)
        wait = min(wait, cap)
        schedule = state.schedules.setdefault(session_id, _Schedule())
        state.hold_until = schedule.next_at = now + wait
        if verdict.kind == "busy":
            notes.add(logging.INFO, "upload API asks to wait %.1f s (%s)", wait, verdict.reason)
        else:
            notes.add(logging.DEBUG, "session %s: no link, next try in %.1f s", session_id, wait)
        return Retry(wait, verdict.reason)

    def _pick(self, entries: Sequence[QueuedReport], now: float) -> tuple[QueuedReport | None, float | None]:
        """The oldest entry due now, else (None, when the next one is due; None when there is none)."""
        with self._lock:
            state = self._state
            horizon = now + self._config.retry_max_delay  # a clock that jumped back postpones nothing longer
            state.hold_until = min(state.hold_until, horizon)
            if state.auth_until is not None:
                state.auth_until = min(state.auth_until, horizon)
            earliest, first = math.inf, None
            for entry in entries:
                schedule = state.schedules.get(entry.session_id)
                due = 0.0
                if schedule is not None:
                    due = schedule.next_at = min(schedule.next_at, horizon)
                if due <= now and first is None:
                    first = entry
                earliest = min(earliest, due)
            if first is None and not entries:
                state.next_attempt = None
                return None, None
            at = max(earliest, state.hold_until, state.auth_until or 0.0)
            state.next_attempt = at
            return (first, None) if at <= now else (None, at)

    @contextmanager
    def _in_flight(self) -> Iterator[None]:
        with self._lock:
            self._state.in_flight = True
        try:
            yield
        finally:
            with self._lock:
                self._state.in_flight = False

    # -- worker thread ---------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                wait = self._step()
            except Exception:
                logger.exception("upload worker failed; it carries on")
                wait = min(self._config.retry_max_delay, 30.0)
            if wait > 0:
                self._wake.wait(wait)
                self._wake.clear()

    def _step(self) -> float:
        """Try the next due session; returns how long to wait before the next step."""
        config = self._config
        if config_problem(config):
            return config.retry_max_delay  # until reconfigure() wakes the worker
        entries = self._queue.pending()
        live = {entry.session_id for entry in entries}
        with self._lock:
            self._state.pending = len(entries)
            for session_id in self._state.schedules.keys() - live:
                del self._state.schedules[session_id]
            for session_id in self._state.unrecorded.keys() - live:
                del self._state.unrecorded[session_id]
        now = self._clock()
        entry, due_at = self._pick(entries, now)
        if entry is not None:
            self.upload_one(entry)
            return 0.0
        if due_at is None:
            return config.retry_max_delay  # nothing pending: look again now and then, or when woken
        return min(max(due_at - now, 0.0), config.retry_max_delay)


class _Notes:
    """Log records gathered under the lock and emitted after it is released."""

    def __init__(self) -> None:
        self._records: list[tuple[int, str, tuple[object, ...]]] = []

    def add(self, level: int, message: str, *args: object) -> None:
        self._records.append((level, message, args))

    def emit(self) -> None:
        for level, message, args in self._records:
            logger.log(level, message, *args)


_DRAIN_COUNTS: dict[type, str] = {Delivered: "delivered", Dead: "dead", Skipped: "skipped"}


def _describe(session_id: str, outcome: UploadOutcome) -> str:
    """One line for the status: what happened to SESSION_ID."""
    match outcome:
        case Delivered(server_id=server_id):
            return f"session {session_id} delivered (server id {server_id or '?'})"
        case Retry(after_seconds=wait, reason=reason):
            return f"session {session_id} not delivered, next try in {wait:.0f} s: {reason}"
        case Dead(reason=reason):
            return f"session {session_id} dead-lettered: {reason}"
        case AuthFailed(reason=reason):
            return f"credentials refused: {reason}"
        case Skipped(reason=reason):
            return f"session {session_id} skipped: {reason}"
