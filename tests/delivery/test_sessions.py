"""Session boundaries and the putt journal, including a real process killed with SIGKILL mid-session."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from daemon.delivery.sessions import SessionConfig, SessionKeeper
from daemon.models import Point, PuttEvent
from tests.conftest import putt_event


def putt(t: float, detail: str = "MAKE - HOLE: TOP - CENTER") -> PuttEvent:
    return putt_event(detail, t - 1.5, t, (Point(1, 2),))


def keeper(tmp_path: Path, idle: float = 120.0, max_duration: float = 7200.0) -> SessionKeeper:
    return SessionKeeper(SessionConfig("box-1", idle, max_duration, tmp_path / "journal"))


def test_session_starts_with_first_putt_and_ends_after_idle_timeout(tmp_path: Path) -> None:
    sessions = keeper(tmp_path)
    assert sessions.tick(100.0) is None
    sessions.add_putt(putt(10.0), epoch_offset=1_700_000_000.0)
    sessions.add_putt(putt(20.0, "MISS - CATCH: LEFT - LEFT"), epoch_offset=1_700_000_000.0)
    assert sessions.tick(139.9) is None
    done = sessions.tick(140.0)
    assert done is not None
    assert done.session_id == "box-1_1700000008500"
    assert done.end_reason == "idle"
    assert [p.time for p in done.putts] == [10.0, 20.0]
    assert done.started_at == 1_700_000_008.5
    assert done.ended_at == 1_700_000_020.0
    assert sessions.active_session_id is None


def test_no_putt_no_session(tmp_path: Path) -> None:
    sessions = keeper(tmp_path)
    assert sessions.tick(10_000.0) is None
    assert sessions.end("shutdown") is None
    assert not (tmp_path / "journal").exists() or not list((tmp_path / "journal").iterdir())


def test_a_session_started_on_request_opens_now_and_leaves_nothing_without_a_putt(tmp_path: Path) -> None:
    sessions = keeper(tmp_path, idle=120.0)
    assert sessions.start(5.0, epoch_offset=1_700_000_000.0) == "box-1_1700000005000"
    assert sessions.start(6.0, epoch_offset=1_700_000_000.0) is None  # one is open
    assert (sessions.active_session_id, sessions.active_count) == ("box-1_1700000005000", 0)
    assert sessions.tick(124.9) is None
    assert sessions.tick(125.0) is None  # idle since it opened, and no putt: dropped, not finished
    assert sessions.active_session_id is None
    assert not list((tmp_path / "journal").iterdir())
    sessions.start(200.0, epoch_offset=1_700_000_000.0)
    sessions.add_putt(putt(230.0), epoch_offset=1_700_000_000.0)
    done = sessions.end("command")
    assert done is not None
    assert (done.session_id, done.started_at, len(done.putts)) == ("box-1_1700000200000", 1_700_000_200.0, 1)
    header = json.loads((tmp_path / "journal" / f"{done.session_id}.journal").read_text().splitlines()[0])
    assert header["session"]["start_time"] == 200.0


def test_max_duration_splits_a_long_session(tmp_path: Path) -> None:
    sessions = keeper(tmp_path, idle=120.0, max_duration=300.0)
    for t in range(0, 300, 60):
        assert sessions.add_putt(putt(float(t) + 2), epoch_offset=0.0) is None
    finished = sessions.add_putt(putt(310.0), epoch_offset=0.0)
    assert finished is not None
    assert finished.end_reason == "max_duration"
    assert len(finished.putts) == 5
    assert len(sessions.active_putts) == 1


def test_explicit_end(tmp_path: Path) -> None:
    sessions = keeper(tmp_path)
    sessions.add_putt(putt(5.0), epoch_offset=0.0)
    done = sessions.end("command")
    assert done is not None
    assert done.end_reason == "command"


def test_journal_is_durable_and_discarded_after_the_report(tmp_path: Path) -> None:
    sessions = keeper(tmp_path)
    sessions.add_putt(putt(5.0), epoch_offset=0.0)
    journal = next((tmp_path / "journal").glob("*.journal"))
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert "session" in lines[0]
    assert lines[1]["putt"]["kind"] == "HOLE"
    assert (lines[1]["putt"]["hole_quadrant"], lines[1]["putt"]["entry_lane"]) == ("TOP", "CENTER")
    done = sessions.end("shutdown")
    assert done is not None
    sessions.discard_journal(done)
    assert not journal.exists()


def test_old_journal_is_finalised_and_recent_one_resumed(tmp_path: Path) -> None:
    first = keeper(tmp_path)
    first.add_putt(putt(1000.0), epoch_offset=0.0)
    first.add_putt(putt(1010.0), epoch_offset=0.0)
    again = keeper(tmp_path)
    assert again.recover(now_epoch=1050.0) == []
    assert len(again.active_putts) == 2
    later = keeper(tmp_path)
    (done,) = later.recover(now_epoch=5000.0)
    assert done.end_reason == "recovered"
    assert len(done.putts) == 2
    assert later.active_session_id is None


def test_torn_last_line_keeps_every_complete_putt(tmp_path: Path) -> None:
    sessions = keeper(tmp_path)
    sessions.add_putt(putt(1.0), epoch_offset=0.0)
    sessions.add_putt(putt(2.0), epoch_offset=0.0)
    journal = next((tmp_path / "journal").glob("*.journal"))
    with journal.open("a") as handle:
        handle.write('{"putt": {"outcome": "MA')
    (done,) = keeper(tmp_path).recover(now_epoch=10_000.0)
    assert [p.time for p in done.putts] == [1.0, 2.0]


def test_garbage_journal_is_moved_aside_not_lost(tmp_path: Path) -> None:
    folder = tmp_path / "journal"
    folder.mkdir()
    (folder / "box-1_1.journal").write_bytes(b"\xff\x00garbage\n")
    assert keeper(tmp_path).recover(now_epoch=10.0) == []
    assert (folder / "box-1_1.unreadable").exists()


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from daemon.models import PuttEvent
    from daemon.delivery.sessions import SessionConfig, SessionKeeper

    keeper = SessionKeeper(SessionConfig("box-1", 120.0, 7200.0, Path(sys.argv[1])))
    for i in range(1000):
        t = 1_000.0 + 5 * i
        event = PuttEvent("HOLE", t - 1, t, "LEFT", None, "LOW")
        keeper.add_putt(event, epoch_offset=0.0)
        print(i + 1, flush=True)
        time.sleep(0.01)
    """
)


def test_kill_9_mid_session_loses_no_journalled_putt(tmp_path: Path) -> None:
    folder = tmp_path / "journal"
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder)], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        reported = 0
        while reported < 25:
            reported = int(child.stdout.readline())
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    (done,) = keeper(tmp_path).recover(now_epoch=1e9)
    # Every putt the process announced was journalled first; one more may have landed before the kill.
    assert len(done.putts) in (reported, reported + 1)
    assert done.putts[0].detail == "MAKE - HOLE: LOW - LEFT"
