"""Spool stage: the durable on-disk queue between finished sessions and the uploader (a `SessionSink`).

Layout under `root`: `pending/` (waiting for upload), `dead/` (given up on; `<id>.reason` says why), `sent/`
(the `keep_sent` latest uploads), `locks/` (per-entry flocks) and `.lock` (held by the process that owns the
spool). An entry is `<id>.json` (the report, the uploader's unit of work), `<id>.csv` and a `<id>.meta` JSON
sidecar (queued_at, filed_at, attempts, last_error). The JSON's presence in a folder means the entry is
complete there: `accept` writes it last, a move renames it first, a removal unlinks it first, and `open()`
tidies what an interrupted write or move left (and the lock files of killed holders) and sends corrupt pending
reports to `dead/`. Every file is written atomically and durably (daemon.atomicfile); a failure is a one-line
`SpoolError` and leaves no partial entry. Pending entries are never dropped: at the size cap `sent/` then
`dead/` are pruned oldest first, and if that is not enough `accept` raises `SpoolFull`, so the service keeps
the session's journal and retries.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

from daemon.atomicfile import fsync_dir, write_atomic
from daemon.delivery.reports import SessionReport, report_csv, report_json
from daemon.errors import SpoolError
from daemon.models import Session

logger = logging.getLogger(__name__)

Folder = Literal["pending", "dead", "sent"]
FOLDERS: tuple[Folder, ...] = ("pending", "dead", "sent")
# The rule write_report applies: a session id is a plain file name, never hidden, never a path.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SIDECARS = (".csv", ".meta", ".reason")
_MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SpoolConfig:
    """Where the spool lives and how much of the disk it may take."""

    root: Path
    max_bytes: int = 512 * 1024 * 1024
    keep_sent: int = 200


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """One queued, sent or dead session as it is on disk."""

    session_id: str
    folder: Folder
    json_path: Path
    csv_path: Path | None
    size: int  # bytes of the pair and its sidecars
    queued_at: float  # UTC epoch seconds it entered pending/
    attempts: int
    last_error: str  # "" if none; in dead/ the reason; in sent/ the server's session id
    filed_at: float  # UTC epoch seconds it entered its current folder; sent/ and dead/ are pruned by it


@dataclass(frozen=True, slots=True)
class SpoolUsage:
    """Entries per folder, bytes on disk, and whether the last session was refused for lack of room."""

    pending: int
    dead: int
    sent: int
    bytes: int
    full: bool


@dataclass(frozen=True, slots=True)
class _Meta:
    queued_at: float
    filed_at: float
    attempts: int = 0
    last_error: str = ""

    def encode(self) -> bytes:
        return (json.dumps(asdict(self)) + "\n").encode()


class SpoolFull(SpoolError):  # noqa: N818  # the name the issue and the service use
    """The size cap is reached and only pending sessions are left, which are never dropped."""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _defect(path: Path) -> str | None:
    """Why the pending report at PATH cannot be uploaded, or None if it can."""
    if not _SAFE_ID.fullmatch(path.stem):
        return "its file name is not a safe session id"
    try:
        data = json.loads(path.read_bytes())
    except ValueError as err:  # also UnicodeDecodeError
        return f"not valid JSON ({err})"
    if not isinstance(data, dict):
        return f"not a JSON object (a {type(data).__name__})"
    if data.get("session_id") != path.stem:
        return f"session_id {data.get('session_id')!r} does not match the file name"
    total = data.get("total_putts")
    if isinstance(total, bool) or not isinstance(total, int | float):
        return f"total_putts is not a number (got {total!r})"
    return None


@contextlib.contextmanager
def _disk(action: str) -> Iterator[None]:
    """Turn an OSError into a one-line SpoolError saying what could not be done and why."""
    try:
        yield
    except OSError as err:
        where = f" ({err.filename})" if err.filename else ""
        raise SpoolError(f"{action}: {err.strerror or err}{where}") from err


class Spool:
    """The queue. One process owns it (`open()`); another may share it to upload (`open(exclusive=False)`)."""

    def __init__(self, config: SpoolConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        # The vision loop's accept and the uploader thread share one Spool; other processes use entry_lock.
        self._mutex = threading.RLock()
        self._lock_fd: int | None = None
        self._refused = False

    def open(self, *, exclusive: bool = True) -> list[str]:
        """Create the folders; if EXCLUSIVE, take the spool's lock and tidy up. One line per thing done."""
        with _disk(f"cannot open spool {self.config.root}"):
            for folder in (*FOLDERS, "locks"):
                (self.config.root / folder).mkdir(parents=True, exist_ok=True)
            if not exclusive:
                return []  # tidying up would race with the owner's writes
            if self._lock_fd is None:
                self._lock_fd = self._take_lock()
            with self._mutex:
                return [
                    *self._remove_temp_files(),
                    *self._sweep_locks(),
                    *self._repair(),
                    *self._quarantine(),
                ]

    def accept(self, session: Session, report: SessionReport) -> None:
        """Queue the report pair in pending/; SpoolError (SpoolFull) if it cannot, leaving no part of it."""
        sid = self._check(session.session_id)
        try:
            text = json.dumps(report_json(report), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        except ValueError as err:
            raise SpoolError(f"cannot queue session {sid}: its report is not valid JSON ({err})") from err
        with self._mutex, _disk(f"cannot queue session {sid} in {self.config.root / 'pending'}"):
            for folder in FOLDERS:
                if self._file(folder, sid, ".json").exists():
                    # A replayed journal: the queued report stays as it is; one entry per session.
                    logger.info("session %s is already in %s/; not queued again", sid, folder)
                    return
            now = self._clock()
            # CSV first, JSON last: a JSON in pending/ is a complete entry.
            parts = [(".csv", report_csv(report).encode()), (".meta", _Meta(now, now).encode())]
            parts.append((".json", text.encode()))
            self._make_room(sid, sum(len(data) for _, data in parts))
            self._write_new(sid, parts)
            self._refused = False
        logger.info("session %s queued for upload", sid)

    def add_report(self, json_path: Path) -> str:
        """Queue a report pair written by `process` (its CSV beside it, if any); returns its session id.

        The report is checked as `open()` checks pending files, so nothing unuploadable enters the queue.
        """
        problem = _defect(json_path)
        if problem is not None:
            raise SpoolError(f"{json_path}: {problem}")
        sid = json_path.stem
        csv_path = json_path.with_suffix(".csv")
        with self._mutex, _disk(f"cannot queue {json_path} in {self.config.root / 'pending'}"):
            for folder in FOLDERS:
                if self._file(folder, sid, ".json").exists():
                    raise SpoolError(f"{json_path}: session {sid} is already in {folder}/")
            now = self._clock()
            parts = [(".csv", csv_path.read_bytes())] if csv_path.is_file() else []
            parts += [(".meta", _Meta(now, now).encode()), (".json", json_path.read_bytes())]
            self._make_room(sid, sum(len(data) for _, data in parts))
            self._write_new(sid, parts)
        logger.info("session %s queued for upload from %s", sid, json_path)
        return sid

    def pending(self) -> list[SpoolEntry]:
        """The pending entries, oldest first (queued_at, then session id)."""
        return sorted(self.entries("pending"), key=lambda entry: (entry.queued_at, entry.session_id))

    def entries(self, folder: Folder) -> list[SpoolEntry]:
        """FOLDER's entries, oldest first by the time each entered it (in pending/ that is queued_at)."""
        if folder not in FOLDERS:
            raise ValueError(f"unknown spool folder {folder!r}")
        with _disk(f"cannot read spool folder {self.config.root / folder}"):
            found = [self._entry(folder, sid) for sid in self._ids(folder)]
        return sorted((e for e in found if e is not None), key=lambda e: (e.filed_at, e.session_id))

    def get(self, session_id: str) -> SpoolEntry | None:
        """The entry of SESSION_ID in whichever folder holds it, or None."""
        sid = self._check(session_id)
        with _disk(f"cannot read spool entry {sid}"):
            return next((e for f in FOLDERS if (e := self._entry(f, sid)) is not None), None)

    def record_failure(self, session_id: str, error: str) -> None:
        """Count a failed upload of a pending entry and keep its error."""
        sid = self._check(session_id)
        with self._mutex, _disk(f"cannot record a failure of session {sid}"):
            meta = self._pending_meta(sid)
            meta = replace(meta, attempts=meta.attempts + 1, last_error=_one_line(error))
            write_atomic(self._file("pending", sid, ".meta"), meta.encode())

    def mark_sent(self, session_id: str, server_id: str) -> None:
        """Move a pending entry to sent/ with the server's id, then keep only the `keep_sent` newest there."""
        sid = self._check(session_id)
        with self._mutex, _disk(f"cannot mark session {sid} sent"):
            meta = replace(self._pending_meta(sid), filed_at=self._clock(), last_error=_one_line(server_id))
            self._move(sid, "pending", "sent", meta)
            self._refused = False
            sent = self.entries("sent")
            for entry in sent[: max(0, len(sent) - self.config.keep_sent)]:
                self._remove(entry)
        logger.info("session %s sent (server session id %s)", sid, server_id)

    def mark_dead(self, session_id: str, reason: str) -> None:
        """Give up on a pending entry: move it to dead/ with `<id>.reason`."""
        sid = self._check(session_id)
        reason = _one_line(reason)
        with self._mutex, _disk(f"cannot move session {sid} to dead/"):
            meta = replace(self._pending_meta(sid), filed_at=self._clock(), last_error=reason)
            self._move(sid, "pending", "dead", meta, reason)
            self._refused = False
        logger.warning("session %s moved to dead/: %s", sid, reason)

    def retry(self, session_id: str) -> None:
        """Queue a dead entry again, with its attempts reset."""
        sid = self._check(session_id)
        with self._mutex, _disk(f"cannot retry session {sid}"):
            if not self._file("dead", sid, ".json").exists():
                raise SpoolError(f"session {sid} is not in dead/")
            now = self._clock()
            self._move(sid, "dead", "pending", _Meta(now, now))
        logger.info("session %s queued again from dead/", sid)

    def retry_dead(self) -> int:
        """Queue every dead entry again; returns how many."""
        with self._mutex:
            entries = self.entries("dead")
            for entry in entries:
                self.retry(entry.session_id)
        return len(entries)

    def purge_dead(self) -> int:
        """Delete every dead entry; returns how many."""
        with self._mutex, _disk(f"cannot purge {self.config.root / 'dead'}"):
            entries = self.entries("dead")
            for entry in entries:
                self._remove(entry)
                logger.warning("session %s purged from dead/ (%s)", entry.session_id, entry.last_error)
        return len(entries)

    def usage(self) -> SpoolUsage:
        """What the spool holds; `full` when pending alone fills the cap or the last session was refused."""
        found = {folder: self.entries(folder) for folder in FOLDERS}
        pending_bytes = sum(entry.size for entry in found["pending"])
        total = sum(entry.size for entries in found.values() for entry in entries)
        full = self._refused or pending_bytes >= self.config.max_bytes
        return SpoolUsage(len(found["pending"]), len(found["dead"]), len(found["sent"]), total, full)

    @contextlib.contextmanager
    def entry_lock(self, session_id: str) -> Iterator[bool]:
        """Hold SESSION_ID's lock across processes and threads; yields False if someone else holds it."""
        path = self._file("locks", self._check(session_id), ".lock")
        with _disk(f"cannot lock session {session_id}"):
            fd = self._lock_entry(path)
        if fd is None:
            yield False
            return
        try:
            yield True
        finally:
            # Removed while still held: a process that opened the old file sees it is gone and retries.
            path.unlink(missing_ok=True)
            os.close(fd)

    def close(self) -> None:
        """Release the spool's lock."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # --- internals

    @staticmethod
    def _check(session_id: str) -> str:
        if not _SAFE_ID.fullmatch(session_id):
            raise SpoolError(f"session id {session_id!r} is not a safe file name")
        return session_id

    def _file(self, folder: str, sid: str, suffix: str) -> Path:
        return self.config.root / folder / f"{sid}{suffix}"

    def _ids(self, folder: str) -> list[str]:
        found = (self.config.root / folder).glob("*.json")
        return sorted(path.stem for path in found if not path.name.startswith("."))

    def _meta(self, folder: str, sid: str) -> _Meta:
        try:
            raw = json.loads(self._file(folder, sid, ".meta").read_bytes())
            return _Meta(
                float(raw["queued_at"]), float(raw["filed_at"]), int(raw["attempts"]), str(raw["last_error"])
            )
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            # A lost or torn sidecar costs the retry count, never the entry.
            stamp = self._file(folder, sid, ".json").stat().st_mtime
            return _Meta(stamp, stamp)

    def _pending_meta(self, sid: str) -> _Meta:
        if not self._file("pending", sid, ".json").exists():
            raise SpoolError(f"session {sid} is not pending")
        return self._meta("pending", sid)

    def _entry(self, folder: Folder, sid: str) -> SpoolEntry | None:
        json_path, csv_path = self._file(folder, sid, ".json"), self._file(folder, sid, ".csv")
        try:
            meta = self._meta(folder, sid)
        except FileNotFoundError:
            return None  # not there, or moved away while we looked
        size = _size(json_path) + sum(_size(self._file(folder, sid, suffix)) for suffix in _SIDECARS)
        error = meta.last_error
        if folder == "dead":
            with contextlib.suppress(FileNotFoundError):
                error = _one_line(self._file(folder, sid, ".reason").read_text(errors="replace")) or error
        return SpoolEntry(
            sid, folder, json_path, csv_path if csv_path.exists() else None, size, meta.queued_at,
            meta.attempts, error, meta.filed_at,
        )  # fmt: skip

    def _write_new(self, sid: str, parts: list[tuple[str, bytes]]) -> None:
        written: list[Path] = []
        try:
            for suffix, data in parts:
                path = self._file("pending", sid, suffix)
                write_atomic(path, data)
                written.append(path)
        except OSError:
            # No half entry: the session is still in its journal and the next accept starts afresh.
            with contextlib.suppress(OSError):
                for path in written:
                    path.unlink(missing_ok=True)
                fsync_dir(self.config.root / "pending")
            raise

    def _make_room(self, sid: str, needed: int) -> None:
        cap = self.config.max_bytes
        used = {f: sum(_size(p) for p in (self.config.root / f).iterdir()) for f in FOLDERS}
        if used["pending"] + needed > cap:
            self._refused = True
            count, megabytes = len(self._ids("pending")), used["pending"] / _MB
            raise SpoolFull(
                f"spool full: {count} pending sessions use {megabytes:.1f} MB of the {cap / _MB:.1f} MB cap; "
                f"session {sid} stays in its journal until uploads make room"
            )
        excess = sum(used.values()) + needed - cap
        for folder in ("sent", "dead"):
            for entry in self.entries(folder):
                if excess <= 0:
                    return
                self._remove(entry)
                excess -= entry.size
                level = logging.WARNING if folder == "dead" else logging.INFO
                logger.log(level, "spool cap: removed %s from %s/ to make room", entry.session_id, folder)

    def _move(self, sid: str, src: Folder, dst: Folder, meta: _Meta, reason: str | None = None) -> None:
        source, target = self.config.root / src, self.config.root / dst
        (source / f"{sid}.json").rename(target / f"{sid}.json")  # from here on the entry is in DST
        with contextlib.suppress(FileNotFoundError):
            (source / f"{sid}.csv").rename(target / f"{sid}.csv")
        write_atomic(target / f"{sid}.meta", meta.encode())
        if reason is not None:
            write_atomic(target / f"{sid}.reason", (reason + "\n").encode())
        for suffix in (".meta", ".reason"):
            (source / f"{sid}{suffix}").unlink(missing_ok=True)
        fsync_dir(source)
        fsync_dir(target)

    def _remove(self, entry: SpoolEntry) -> None:
        entry.json_path.unlink(missing_ok=True)  # first: without it the rest is a leftover open() removes
        for suffix in _SIDECARS:
            self._file(entry.folder, entry.session_id, suffix).unlink(missing_ok=True)
        fsync_dir(entry.json_path.parent)

    def _take_lock(self) -> int:
        fd = os.open(self.config.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise SpoolError(f"spool {self.config.root} is in use by another process (pid {holder})") from err
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd

    @staticmethod
    def _lock_entry(path: Path) -> int | None:
        for _ in range(10):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_ino == os.fstat(fd).st_ino:
                    return fd
            os.close(fd)  # its holder removed this file as we opened it: take the new one
        return None

    def _sweep_locks(self) -> list[str]:
        """Remove entry lock files nobody holds: what a process killed while holding one left behind."""
        lines = []
        for path in sorted((self.config.root / "locks").glob("*.lock")):
            fd = self._lock_entry(path)
            if fd is None:
                continue  # held by a live process (a queue command), which removes it itself
            path.unlink(missing_ok=True)
            os.close(fd)
            lines.append(f"removed stale lock locks/{path.name}")
        return lines

    def _remove_temp_files(self) -> list[str]:
        lines = []
        for folder in (self.config.root, *(self.config.root / f for f in FOLDERS)):
            for path in sorted(folder.glob(".*.tmp")):
                path.unlink(missing_ok=True)
                lines.append(f"removed leftover temp file {path}")
        return lines

    def _repair(self) -> list[str]:
        """Finish what an interrupted accept, move or removal left: sidecars without their JSON."""
        lines = []
        for folder in FOLDERS:
            for path in sorted((self.config.root / folder).iterdir()):
                complete = path.with_suffix(".json").exists()
                if complete or path.suffix not in _SIDECARS or path.name.startswith("."):
                    continue
                home = next((f for f in FOLDERS if self._file(f, path.stem, ".json").exists()), None)
                target = None if home is None else self._file(home, path.stem, path.suffix)
                if target is None or target.exists() or (path.suffix == ".reason" and home != "dead"):
                    path.unlink()
                    lines.append(f"removed leftover {folder}/{path.name}")
                    continue
                if path.suffix == ".meta" and home != folder:
                    # The move was cut before its new meta was written: the old one describes the old folder.
                    now = self._clock()
                    try:
                        old = self._meta(folder, path.stem)
                    except FileNotFoundError:
                        old = _Meta(now, now)
                    lost = "server id" if home == "sent" else "reason"
                    note = f"{lost} not recorded: the move was interrupted"
                    write_atomic(target, _Meta(old.queued_at, now, old.attempts, note).encode())
                    path.unlink()
                else:
                    path.rename(target)
                fsync_dir(target.parent)
                lines.append(f"moved {folder}/{path.name} to {home}/ to finish an interrupted move")
            fsync_dir(self.config.root / folder)
        return lines

    def _quarantine(self) -> list[str]:
        lines = []
        for sid in self._ids("pending"):
            defect = _defect(self._file("pending", sid, ".json"))
            if defect is None:
                continue
            reason = f"corrupt report: {_one_line(defect)}"
            meta = replace(self._meta("pending", sid), filed_at=self._clock(), last_error=reason)
            self._move(sid, "pending", "dead", meta, reason)
            lines.append(f"moved pending/{sid}.json to dead/: {reason}")
        return lines
