"""Session boundaries stage: putts in, finished `Session`s out, every putt journalled the moment it lands.

A session starts with its first putt, or earlier when asked (`start`), and ends after `idle_timeout` seconds
without one, at `max_duration`, on an explicit end, or at shutdown; a session that ends with no putt does not
exist (no journal, no `Session`). It spans its first putt's start
to its last putt's classification. Each putt is appended to `<journal_dir>/<session_id>.journal` (JSON lines,
fsynced) before anything else happens, so a kill -9 or power cut loses nothing: `recover()` finalises an old
journal or resumes one whose last putt is within the idle timeout.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from daemon.atomicfile import fsync_dir
from daemon.models import LANES, PUTT_KINDS, QUADRANTS, EndReason, Point, PuttEvent, Session

logger = logging.getLogger(__name__)

JOURNAL_SUFFIX = ".journal"
_Name = TypeVar("_Name", bound=str)


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Who we are, when sessions end, where journals live."""

    device_id: str
    idle_timeout: float
    max_duration: float
    journal_dir: Path


@dataclass(slots=True)
class _Active:
    session_id: str
    start_time: float
    epoch_offset: float
    putts: list[PuttEvent]
    journal: Path


def _putt_record(event: PuttEvent) -> dict[str, Any]:
    record = asdict(event)
    record["path"] = [[round(p.x, 1), round(p.y, 1)] for p in event.path]
    return record


def _member(value: object, allowed: tuple[_Name, ...]) -> _Name:
    for item in allowed:
        if value == item:
            return item
    raise ValueError(f"unknown value {value!r}")


def _putt_from(record: dict[str, Any]) -> PuttEvent:
    path = tuple(Point(float(x), float(y)) for x, y in record.get("path", []))
    exit_lane, quadrant = record.get("exit_lane"), record.get("hole_quadrant")
    return PuttEvent(
        _member(record["kind"], PUTT_KINDS), float(record["start_time"]), float(record["time"]),
        _member(record["entry_lane"], LANES), None if exit_lane is None else _member(exit_lane, LANES),
        None if quadrant is None else _member(quadrant, QUADRANTS), path,
    )  # fmt: skip


class SessionKeeper:
    """Groups putts into sessions and keeps the open one durable."""

    def __init__(self, config: SessionConfig) -> None:
        self._config = config
        self._active: _Active | None = None

    @property
    def active_session_id(self) -> str | None:
        """The open session's id; safe to read from another thread."""
        active = self._active
        return active.session_id if active else None

    @property
    def active_putts(self) -> tuple[PuttEvent, ...]:
        """The open session's putts so far."""
        return tuple(self._active.putts) if self._active else ()

    @property
    def active_count(self) -> int:
        """How many putts the open session has (0 when none is open)."""
        return len(self._active.putts) if self._active else 0

    def reconfigure(self, config: SessionConfig) -> None:
        """New timeouts; they apply to the open session too, from its next putt or tick."""
        self._config = config

    def add_putt(self, event: PuttEvent, epoch_offset: float) -> Session | None:
        """Record a putt; returns the previous session if this putt could not join it (max duration)."""
        finished = None
        if self._active is not None and event.time - self._active.start_time > self._config.max_duration:
            finished = self._close("max_duration")
        records: list[dict[str, Any]] = []
        if self._active is None:
            self._active = self._open(event.start_time, epoch_offset)
        if not self._active.putts:
            records.append({"session": self._header(self._active)})
        self._active.putts.append(event)
        records.append({"putt": _putt_record(event)})
        # The header and the first putt go down in one write, so no journal ever exists without a putt.
        self._append(self._active.journal, records)
        if len(records) == 2:
            fsync_dir(self._config.journal_dir)
        return finished

    def tick(self, t: float) -> Session | None:
        """Close the open session if it has gone idle or run too long by source time T."""
        if self._active is None:
            return None
        last = self._active.putts[-1].time if self._active.putts else self._active.start_time
        if t - last >= self._config.idle_timeout:
            return self._close("idle")
        if t - self._active.start_time >= self._config.max_duration:
            return self._close("max_duration")
        return None

    def start(self, t: float, epoch_offset: float) -> str | None:
        """Open a session at source time T; returns its id, or None when one is open already."""
        if self._active is not None:
            return None
        self._active = self._open(t, epoch_offset)
        return self._active.session_id

    def end(self, reason: EndReason) -> Session | None:
        """Close the open session now (a command, or shutdown)."""
        return self._close(reason) if self._active is not None else None

    def discard_journal(self, session: Session) -> None:
        """Drop a finished session's journal once its report is safely on disk."""
        journal = self._config.journal_dir / f"{session.session_id}{JOURNAL_SUFFIX}"
        journal.unlink(missing_ok=True)
        fsync_dir(self._config.journal_dir)

    def recover(self, now_epoch: float) -> list[Session]:
        """Read journals left by a previous run: resume a recent one, return the others finished."""
        finished: list[Session] = []
        if not self._config.journal_dir.is_dir():
            return finished
        journals = sorted(self._config.journal_dir.glob(f"*{JOURNAL_SUFFIX}"))
        for journal in journals:
            active = self._read_journal(journal)
            if active is None:
                continue
            last_epoch = active.putts[-1].time + active.epoch_offset
            recent = now_epoch - last_epoch < self._config.idle_timeout and active.epoch_offset == 0.0
            if recent and self._active is None and journal == journals[-1]:
                logger.info("resuming session %s with %d putts", active.session_id, len(active.putts))
                self._active = active
                continue
            logger.info("recovered session %s with %d putts", active.session_id, len(active.putts))
            finished.append(self._session(active, "recovered"))
        return finished

    def _open(self, start_time: float, epoch_offset: float) -> _Active:
        start_ms = round((start_time + epoch_offset) * 1000)
        session_id = f"{self._config.device_id}_{start_ms}"
        self._config.journal_dir.mkdir(parents=True, exist_ok=True)
        journal = self._config.journal_dir / f"{session_id}{JOURNAL_SUFFIX}"
        logger.info("session %s started", session_id)
        return _Active(session_id, start_time, epoch_offset, [], journal)

    def _header(self, active: _Active) -> dict[str, Any]:
        return {
            "session_id": active.session_id, "device_id": self._config.device_id,
            "start_time": active.start_time, "epoch_offset": active.epoch_offset,
        }  # fmt: skip

    def _close(self, reason: EndReason) -> Session | None:
        assert self._active is not None  # noqa: S101  # callers check
        active, self._active = self._active, None
        if not active.putts:  # started on request and never putted on: nothing to report
            logger.info("session %s ended (%s) with no putt; dropped", active.session_id, reason)
            return None
        session = self._session(active, reason)
        logger.info("session %s ended (%s) with %d putts", session.session_id, reason, len(session.putts))
        return session

    def _session(self, active: _Active, reason: EndReason) -> Session:
        return Session(
            active.session_id, self._config.device_id, active.start_time, active.putts[-1].time,
            active.epoch_offset, tuple(active.putts), reason,
        )  # fmt: skip

    @staticmethod
    def _append(journal: Path, records: list[dict[str, Any]]) -> None:
        data = "".join(json.dumps(record) + "\n" for record in records).encode()
        fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    @staticmethod
    def _read_journal(journal: Path) -> _Active | None:
        header: dict[str, Any] | None = None
        putts: list[PuttEvent] = []
        for number, line in enumerate(journal.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            try:
                record = json.loads(line)
                if "session" in record:
                    header = record["session"]
                else:
                    putts.append(_putt_from(record["putt"]))
            except (ValueError, KeyError, TypeError):
                # A power cut can tear the last line; everything before it was fsynced and is kept.
                logger.warning("journal %s: line %d unreadable, skipped", journal.name, number)
        try:
            if header is None or not putts:
                raise KeyError("a header and at least one putt")  # noqa: TRY301  # one path for every defect
            return _Active(
                str(header["session_id"]),
                float(header["start_time"]),
                float(header["epoch_offset"]),
                putts,
                journal,
            )
        except (ValueError, KeyError, TypeError) as err:
            aside = journal.with_suffix(".unreadable")
            logger.error("journal %s unusable (missing %s); moved aside to %s", journal.name, err, aside.name)  # noqa: TRY400  # the reason is the message; no traceback wanted
            journal.rename(aside)
            return None
