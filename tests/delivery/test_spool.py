"""The spool: real files, a real small filesystem, real processes (one killed with SIGKILL 20 times)."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.delivery.reports import ReportContext, build_report
from daemon.delivery.sessions import SessionConfig, SessionKeeper
from daemon.delivery.spool import Spool, SpoolConfig, SpoolEntry, SpoolFull
from daemon.errors import SpoolError
from daemon.models import Session
from tests.conftest import REPO, putt_event

CONTEXT = ReportContext("Jane Doe", "jane@example.com", "0.1.0", "abc123def456", "cal789")
EPOCH = 1_700_000_000.0
CHILD = Path(__file__).with_name("spool_child.py")
SUFFIXES = ("csv", "json", "meta")


class Clock:
    """A wall clock the test sets."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def session(number: int) -> Session:
    details = ["MAKE - HOLE: TOP - CENTER", "MISS - CATCH: LEFT - RIGHT", "MAKE - HOLE: LOW - LEFT"]
    start = 10.0 * number
    putts = tuple(putt_event(d, start + 3 * i, start + 3 * i + 1.5) for i, d in enumerate(details))
    return Session(f"box-1_{number:04d}", "box-1", putts[0].start_time, putts[-1].time, EPOCH, putts, "idle")


def queue(spool: Spool, number: int, clock: Clock | None = None, at: float = 0.0) -> str:
    """Accept session NUMBER (at time AT on CLOCK, if given); returns its id."""
    if clock is not None:
        clock.now = at
    done = session(number)
    spool.accept(done, build_report(done, CONTEXT))
    return done.session_id


def ids(entries: list[SpoolEntry]) -> list[str]:
    return [entry.session_id for entry in entries]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def temp_files(root: Path) -> list[Path]:
    return sorted(root.rglob(".*.tmp"))


def make_spool(root: Path, clock: Clock | None = None, **config: int) -> Spool:
    spool = Spool(SpoolConfig(root, **config), clock=clock or Clock())
    spool.open()
    return spool


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def spool(tmp_path: Path, clock: Clock) -> Iterator[Spool]:
    opened = make_spool(tmp_path / "spool", clock)
    yield opened
    opened.close()


def run_child(*args: str, stdin: int = subprocess.PIPE) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), *args], cwd=REPO, stdin=stdin, stdout=subprocess.PIPE, text=True
    )


# --- accept


def test_accept_writes_the_pair_into_pending_with_numbers_as_numbers(spool: Spool, clock: Clock) -> None:
    sid = queue(spool, 1, clock, at=1234.5)
    pending = spool.config.root / "pending"
    assert sorted(p.name for p in pending.iterdir()) == [f"{sid}.csv", f"{sid}.json", f"{sid}.meta"]
    data = json.loads((pending / f"{sid}.json").read_text())
    assert data["session_id"] == sid
    assert data["total_putts"] == 3
    assert type(data["total_putts"]) is int
    assert type(data["session_duration_seconds"]) is float
    assert (pending / f"{sid}.csv").read_bytes().startswith(b"Player Name,Jane Doe\r\n")
    entry = spool.get(sid)
    assert entry is not None
    assert (entry.folder, entry.queued_at, entry.attempts, entry.last_error) == ("pending", 1234.5, 0, "")
    assert entry.csv_path == pending / f"{sid}.csv"
    assert entry.size == sum(p.stat().st_size for p in pending.iterdir())
    assert not temp_files(spool.config.root)


def test_accepting_the_same_session_again_changes_nothing(spool: Spool, clock: Clock) -> None:
    sid = queue(spool, 1, clock, at=1000.0)
    pending = spool.config.root / "pending"
    before = snapshot(pending)
    stamps = {p.name: p.stat().st_mtime_ns for p in pending.iterdir()}
    queue(spool, 1, clock, at=2000.0)
    # A journal replayed after a crash ends as "recovered": still one entry, the queued bytes kept.
    replayed = dataclasses.replace(session(1), end_reason="recovered")
    spool.accept(replayed, build_report(replayed, CONTEXT))
    assert snapshot(pending) == before
    assert {p.name: p.stat().st_mtime_ns for p in pending.iterdir()} == stamps
    assert ids(spool.pending()) == [sid]


def test_a_session_already_sent_or_dead_is_not_queued_again(spool: Spool) -> None:
    sent, dead = queue(spool, 1), queue(spool, 2)
    spool.mark_sent(sent, "srv-1")
    spool.mark_dead(dead, "server said no")
    queue(spool, 1)
    queue(spool, 2)
    assert spool.pending() == []
    assert ids(spool.entries("sent")) == [sent]
    assert ids(spool.entries("dead")) == [dead]


def test_unsafe_session_ids_are_refused(spool: Spool) -> None:
    bad = dataclasses.replace(session(1), session_id="../escape")
    with pytest.raises(SpoolError, match="not a safe file name"):
        spool.accept(bad, build_report(bad, CONTEXT))
    with pytest.raises(SpoolError, match="not a safe file name"):
        spool.get(".hidden")
    with pytest.raises(SpoolError, match="not a safe file name"), spool.entry_lock("a/b"):
        pass
    assert not list(spool.config.root.parent.glob("escape*"))


# --- open


def test_open_removes_temp_files_and_finishes_interrupted_writes_and_moves(tmp_path: Path) -> None:
    root, clock = tmp_path / "spool", Clock()
    spool = make_spool(root, clock)
    kept, moved = queue(spool, 1, clock, at=1.0), queue(spool, 2, clock, at=2.0)
    spool.record_failure(moved, "HTTP 500: db down")
    spool.close()
    # What a power cut leaves: temp files, a CSV whose JSON never came, a move cut after its JSON.
    leftovers = [
        root / "pending" / f".{kept}.json.x1y2.tmp",
        root / ".a.tmp",
        root / "sent" / ".b.meta.z.tmp",
    ]
    for path in leftovers:
        path.write_text('{"session_id": "torn')
    (root / "pending" / "box-1_0003.csv").write_text("Player Name,Jane Doe\r\n")
    (root / "pending" / f"{moved}.json").rename(root / "sent" / f"{moved}.json")
    clock.now += 60
    reopened = Spool(SpoolConfig(root), clock=clock)
    lines = reopened.open()
    assert not temp_files(root)
    assert f"removed leftover temp file {leftovers[0]}" in lines
    assert "removed leftover pending/box-1_0003.csv" in lines
    assert f"moved pending/{moved}.csv to sent/ to finish an interrupted move" in lines
    assert len(lines) == 6  # three temp files, one orphan, the moved CSV and meta
    assert sorted(p.name for p in (root / "pending").iterdir()) == [f"{kept}.{s}" for s in SUFFIXES]
    assert sorted(p.name for p in (root / "sent").iterdir()) == [f"{moved}.{s}" for s in SUFFIXES]
    # The pending meta described the upload failure; in sent/ the entry says its server id is unknown.
    entry = reopened.get(moved)
    assert entry is not None
    assert entry.folder == "sent"
    assert entry.last_error == "server id not recorded: the move was interrupted"
    assert entry.filed_at > entry.queued_at
    reopened.close()


def test_open_moves_corrupt_pending_reports_to_dead_and_keeps_the_others_in_order(tmp_path: Path) -> None:
    root, clock = tmp_path / "spool", Clock()
    spool = make_spool(root, clock)
    first, *corrupt, last = (queue(spool, n, clock, at=float(n)) for n in range(1, 7))
    spool.close()
    pending = root / "pending"
    text = (pending / f"{first}.json").read_text()
    defects = {
        corrupt[0]: (text[: len(text) // 2], "not valid JSON"),
        corrupt[1]: ("[1, 2, 3]\n", "not a JSON object"),
        corrupt[2]: (text.replace(first, "box-1_9"), "session_id 'box-1_9' does not match the file name"),
        corrupt[3]: (text.replace(f'"session_id": "{first}"', f'"session_id": "{corrupt[3]}"').replace(
            '"total_putts": 3,', '"total_putts": "3",', 1
        ), "total_putts is not a number (got '3')"),
    }  # fmt: skip
    for sid, (content, _) in defects.items():
        (pending / f"{sid}.json").write_text(content)
    reopened = Spool(SpoolConfig(root))
    lines = reopened.open()
    assert len(lines) == 4
    assert ids(reopened.pending()) == [first, last]
    assert sorted(ids(reopened.entries("dead"))) == sorted(defects)
    for sid, (content, why) in defects.items():
        reason = (root / "dead" / f"{sid}.reason").read_text()
        assert reason.startswith("corrupt report: ")
        assert why in reason
        assert (root / "dead" / f"{sid}.json").read_text() == content  # kept as found, for a human
        entry = reopened.get(sid)
        assert entry is not None
        assert entry.last_error == reason.strip()
        assert entry.csv_path is not None
    reopened.close()


# --- locks


def test_a_second_process_cannot_open_the_spool_while_it_is_held(spool: Spool) -> None:
    root = spool.config.root
    out, _ = run_child("open", str(root)).communicate(timeout=30)
    assert out.strip() == f"spool {root} is in use by another process (pid {os.getpid()})"
    out, _ = run_child("open", str(root), "shared").communicate(timeout=30)
    assert out.strip() == "opened"
    spool.close()
    out, _ = run_child("open", str(root)).communicate(timeout=30)
    assert out.strip() == "opened"


def test_entry_lock_is_exclusive_across_processes(spool: Spool) -> None:
    root = str(spool.config.root)
    child = run_child("entry-lock", root, "box-1_0001")
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "held True"
    with spool.entry_lock("box-1_0001") as mine, spool.entry_lock("box-1_0002") as other:
        assert (mine, other) == (False, True)
    child.communicate("", timeout=30)
    with spool.entry_lock("box-1_0001") as mine:
        assert mine
        with spool.entry_lock("box-1_0001") as again:  # another thread of this process is refused too
            assert not again
        out, _ = run_child("entry-lock", root, "box-1_0001").communicate("", timeout=30)
        assert out.strip() == "held False"
    assert not list((spool.config.root / "locks").iterdir())


def test_open_sweeps_the_lock_a_killed_holder_left_and_keeps_a_held_one(tmp_path: Path) -> None:
    root = tmp_path / "spool"
    make_spool(root).close()
    killed = run_child("entry-lock", str(root), "box-1_0001")
    alive = run_child("entry-lock", str(root), "box-1_0002")
    for child in (killed, alive):
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held True"
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=30)
    owner = Spool(SpoolConfig(root=root))
    try:
        assert owner.open() == ["removed stale lock locks/box-1_0001.lock"]
        assert sorted(p.name for p in (root / "locks").iterdir()) == ["box-1_0002.lock"]
        with owner.entry_lock("box-1_0002") as mine:
            assert not mine  # the live holder keeps its lock
    finally:
        alive.communicate("", timeout=30)
        owner.close()
    assert not list((root / "locks").iterdir())


# --- the queue's life


def test_pending_is_oldest_first_and_failures_are_counted(spool: Spool, clock: Clock) -> None:
    late = queue(spool, 1, clock, at=1001.0)
    tied_b, tied_a = queue(spool, 3, clock, at=1000.0), queue(spool, 2, clock, at=1000.0)
    assert ids(spool.pending()) == [tied_a, tied_b, late]
    spool.record_failure(tied_a, "HTTP 500: database\nerror")
    spool.record_failure(tied_a, "connection refused")
    entry = spool.get(tied_a)
    assert entry is not None
    assert (entry.attempts, entry.last_error, entry.queued_at) == (2, "connection refused", 1000.0)
    meta = json.loads((spool.config.root / "pending" / f"{tied_a}.meta").read_text())
    assert meta["attempts"] == 2
    with pytest.raises(SpoolError, match="box-1_0009 is not pending"):
        spool.record_failure("box-1_0009", "x")


def test_mark_sent_keeps_only_the_newest_sent(tmp_path: Path) -> None:
    clock = Clock()
    spool = make_spool(tmp_path / "spool", clock, keep_sent=2)
    sessions = [queue(spool, n, clock, at=float(n)) for n in range(1, 5)]
    for n, sid in enumerate(sessions, start=10):
        clock.now = n
        spool.mark_sent(sid, f"srv-{sid}")
    assert ids(spool.entries("sent")) == sessions[2:]
    assert [e.last_error for e in spool.entries("sent")] == [f"srv-{sid}" for sid in sessions[2:]]
    assert spool.get(sessions[0]) is None
    assert sorted(p.name for p in (spool.config.root / "sent").iterdir()) == sorted(
        f"{sid}.{suffix}" for sid in sessions[2:] for suffix in ("csv", "json", "meta")
    )
    with pytest.raises(SpoolError, match="is not pending"):
        spool.mark_sent(sessions[0], "srv")
    spool.close()


def test_dead_entries_are_retried_and_purged(spool: Spool, clock: Clock) -> None:
    first, second, third = (queue(spool, n, clock, at=float(n)) for n in range(1, 4))
    spool.record_failure(first, "HTTP 500")
    spool.mark_dead(first, "HTTP 500 five times: duel 7 does not exist")
    spool.mark_dead(second, "HTTP 400: total_putts")
    assert ids(spool.pending()) == [third]
    assert ids(spool.entries("dead")) == [first, second]
    entry = spool.get(first)
    assert entry is not None
    assert (entry.folder, entry.attempts) == ("dead", 1)
    assert entry.last_error == "HTTP 500 five times: duel 7 does not exist"
    assert (spool.config.root / "dead" / f"{first}.reason").read_text() == f"{entry.last_error}\n"
    clock.now = 50.0
    spool.retry(first)
    entry = spool.get(first)
    assert entry is not None
    assert (entry.folder, entry.attempts, entry.last_error, entry.queued_at) == ("pending", 0, "", 50.0)
    assert not (spool.config.root / "dead" / f"{first}.reason").exists()
    with pytest.raises(SpoolError, match="not in dead"):
        spool.retry(first)
    clock.now = 60.0
    assert spool.retry_dead() == 1
    assert ids(spool.pending()) == [third, first, second]
    spool.mark_dead(first, "a")
    spool.mark_dead(second, "b")
    assert spool.purge_dead() == 2
    assert ids(spool.pending()) == [third]
    assert not list((spool.config.root / "dead").iterdir())


def test_the_cap_prunes_sent_then_dead_oldest_first_and_never_pending(tmp_path: Path) -> None:
    probe = make_spool(tmp_path / "probe")
    entry = probe.get(queue(probe, 1))
    assert entry is not None
    size = entry.size
    probe.close()
    clock = Clock()
    spool = make_spool(tmp_path / "spool", clock, max_bytes=5 * size + size // 2)
    s1, s2, s3, s4, s5 = (queue(spool, n, clock, at=float(n)) for n in range(1, 6))
    for sid in (s2, s1):
        clock.now += 1
        spool.mark_sent(sid, "srv")
    for sid in (s3, s4):
        clock.now += 1
        spool.mark_dead(sid, "gave up")
    # sent/ in the order the sessions were sent (s2 first), then dead/: each new session prunes one.
    for number, pruned in ((6, s2), (7, s1), (8, s3), (9, s4)):
        assert spool.get(pruned) is not None
        queue(spool, number)
        assert spool.get(pruned) is None
    assert ids(spool.pending()) == [s5, *(f"box-1_{n:04d}" for n in range(6, 10))]
    pending = spool.config.root / "pending"
    before = snapshot(pending)
    assert not spool.usage().full
    full = r"^spool full: 5 pending sessions use 0\.\d MB of the 0\.\d MB cap; "
    with pytest.raises(SpoolFull, match=full):
        queue(spool, 10)
    assert snapshot(pending) == before
    usage = spool.usage()
    assert (usage.pending, usage.sent, usage.dead, usage.full) == (5, 0, 0, True)
    assert usage.bytes == sum(len(data) for data in before.values())
    spool.mark_sent(s5, "srv-5")
    assert not spool.usage().full
    queue(spool, 10)
    assert spool.get(s5) is None
    assert len(spool.pending()) == 5
    spool.close()


# --- a real small disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs (the tests run as root, as CI does)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs here (the tests run as root): {result.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path, leave: int) -> Path:
    """Fill DISK to the last block, then free LEAVE bytes; returns the filler file."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"x" * 4096)
        except OSError:
            pass
    os.truncate(filler, filler.stat().st_size - leave)
    return filler


@pytest.mark.parametrize("leave", [0, 4096], ids=["no-room", "room-for-the-csv-only"])
def test_a_full_disk_leaves_no_partial_file_and_loses_nothing(small_disk: Path, leave: int) -> None:
    spool = make_spool(small_disk / "spool")
    try:
        queue(spool, 1)
        pending = spool.config.root / "pending"
        before = snapshot(pending)
        filler = fill(small_disk, leave)
        with pytest.raises(SpoolError, match="No space left on device") as caught:
            queue(spool, 2)
        assert not isinstance(caught.value, SpoolFull)
        assert str(caught.value).startswith(f"cannot queue session box-1_0002 in {pending}: ")
        assert "\n" not in str(caught.value)
        assert snapshot(pending) == before
        assert not temp_files(small_disk)
        filler.unlink()
        queue(spool, 2)
        assert ids(spool.pending()) == ["box-1_0001", "box-1_0002"]
    finally:
        spool.close()


def test_a_read_only_disk_raises_a_clear_error(small_disk: Path) -> None:
    # Shared, so that no file on the disk is open for writing: remounting read-only would be refused.
    spool = Spool(SpoolConfig(small_disk / "spool"))
    spool.open(exclusive=False)
    try:
        sid = queue(spool, 1)
        before = snapshot(spool.config.root / "pending")
        subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
        try:
            with pytest.raises(SpoolError, match="Read-only file system"):
                queue(spool, 2)
            with pytest.raises(SpoolError, match=f"cannot mark session {sid} sent: Read-only file system"):
                spool.mark_sent(sid, "srv")
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
        assert snapshot(spool.config.root / "pending") == before
        assert ids(spool.pending()) == [sid]
    finally:
        spool.close()


# --- kill -9


def test_kill_9_at_random_moments_loses_no_session(tmp_path: Path) -> None:
    root, journal = tmp_path / "spool", tmp_path / "journal"
    rng = random.Random(20240611)
    announced: set[str] = set()
    interrupted: set[str] = set()  # sessions whose accept a kill cut short, as the next open() found them
    for run in range(20):
        child = run_child("produce", str(root), str(journal), str(run * 100_000), stdin=subprocess.DEVNULL)
        assert child.stdout is not None
        for line in iter(child.stdout.readline, ""):
            if line.strip() == "ready":
                break
            if line.startswith("open: "):
                interrupted |= set(re.findall(r"(box-1_\d+)\.(?:csv|meta|json)", line))
            else:
                announced.add(line.strip())
        time.sleep(rng.uniform(0.0, 0.25))
        child.send_signal(signal.SIGKILL)
        rest = child.stdout.read()  # what the pipe holds; a line is one write, so never torn
        assert child.wait(timeout=30) == -signal.SIGKILL
        child.stdout.close()
        announced |= {line for line in rest.splitlines() if line and not line.startswith("open: ")}
        # Every announced session is pending, complete: its JSON is in place only once its CSV is.
        for sid in announced:
            assert (root / "pending" / f"{sid}.json").is_file(), sid
            assert (root / "pending" / f"{sid}.csv").is_file(), sid
    assert len(announced) > 40  # the kills landed among real work
    assert interrupted  # and some in the middle of an accept (9 of the 20 on the reference machine)
    spool = Spool(SpoolConfig(root))
    spool.open()
    assert not temp_files(root)
    keeper = SessionKeeper(SessionConfig("box-1", 120.0, 7200.0, journal))
    for recovered in keeper.recover(now_epoch=2e9):
        journalled = journal / f"{recovered.session_id}.journal"
        assert journalled.exists()  # the same session id as the journal it came from
        count = len(spool.pending())
        already = spool.get(recovered.session_id) is not None
        spool.accept(recovered, build_report(recovered, CONTEXT))
        keeper.discard_journal(recovered)
        assert len(spool.pending()) == count + (not already)
        announced.add(recovered.session_id)
    assert not list(journal.glob("*.journal"))
    pending = spool.pending()
    assert {entry.session_id for entry in pending} == announced
    assert interrupted <= announced  # recovered from their journals under the same session id
    assert spool.entries("dead") == []
    for entry in pending:
        data = json.loads(entry.json_path.read_text())
        # A kill between a session's two putts leaves a journal of one, recovered as a session of one.
        assert (data["session_id"], data["total_makes"]) == (entry.session_id, 1)
        assert data["total_putts"] in (1, 2)
        assert entry.csv_path is not None
    spool.close()
