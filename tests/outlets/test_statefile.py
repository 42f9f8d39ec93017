"""The state file on a real disk: atomic, rate-limited, final state on close, and what a reader concludes."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from daemon.models import ServiceState
from daemon.outlets.statefile import StateFile, process_started, read_state
from tests.conftest import make_state as shared_state


def make_state(**changes: object) -> ServiceState:
    return shared_state(
        **({"fps": 29.8, "gate_skipped": 0.6, "started_at": time.time() - 100, "uptime": 100.0} | changes)
    )


def putts_in(path: Path) -> int | None:
    """The `putts` counter the file holds now, None before the first write."""
    try:
        return int(json.loads(path.read_text())["putts"])
    except FileNotFoundError:
        return None


def wait_for(path: Path, putts: int, timeout: float = 5.0) -> float:
    """Poll until the file holds PUTTS; the monotonic time it was seen."""
    deadline = time.monotonic() + timeout
    while putts_in(path) != putts:
        assert time.monotonic() < deadline, f"state file never showed putts={putts}"
        time.sleep(0.002)
    return time.monotonic()


def dead_pid() -> int:
    """The pid of a process that ran and was reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_json_holds_every_field_and_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state = make_state(problems=("camera lost for 30 s",))
    sink = StateFile(path, interval=1.5)
    sink.state(state)
    sink.close()  # never started: close still writes the final state
    data = json.loads(path.read_text())
    assert set(data) == {field.name for field in dataclasses.fields(ServiceState)} | {
        "interval",
        "pid_started",
    }
    assert data["interval"] == 1.5
    assert data["pid_started"] == process_started(os.getpid())
    assert data["session"] == {"session_id": "puttbox_1700000000000", "putts": 5, "makes": 3, "streak": 2}
    assert data["problems"] == ["camera lost for 30 s"]
    assert data["updated_at"] == state.updated_at
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary files left behind


def test_writes_at_most_every_interval_keeping_only_the_newest_state(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    sink = StateFile(path, interval=1.0)
    sink.start()
    sink.state(make_state(putts=1))
    first = wait_for(path, 1)  # the first state goes out at once
    sink.state(make_state(putts=2))
    sink.state(make_state(putts=3))
    time.sleep(0.3)
    assert putts_in(path) == 1  # within the interval: no write
    second = wait_for(path, 3)  # the newest one; 2 was superseded before its turn
    assert second - first >= 0.9
    sink.state(make_state(putts=4))
    sink.close()  # the final state is written at once, not an interval later
    assert putts_in(path) == 4
    sink.state(make_state(putts=5))  # after close: ignored
    assert putts_in(path) == 4


def test_readers_never_see_a_torn_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    sink = StateFile(path, interval=0.0)
    sink.start()
    sink.state(make_state(putts=0))
    wait_for(path, 0)
    stop = threading.Event()
    seen: set[int] = set()
    reads: list[int] = []
    torn: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            text = path.read_text()
            try:
                data = json.loads(text)
            except ValueError:
                torn.append(text)
                continue
            seen.add(data["putts"])
            reads.append(len(data["problems"]))

    thread = threading.Thread(target=reader)
    thread.start()
    deadline = time.monotonic() + 1.0
    putts = 0
    while time.monotonic() < deadline:
        putts += 1  # the problems list makes the file grow and shrink, so a torn read could not parse
        sink.state(make_state(putts=putts, problems=("x" * 50,) * (putts % 40)))
    sink.close()
    stop.set()
    thread.join()
    assert torn == []
    assert putts_in(path) == putts
    assert len(reads) > 100
    assert len(seen) > 5


@pytest.mark.parametrize("blocker", ["directory", "file-parent"])
def test_a_write_error_is_logged_once_and_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, blocker: str
) -> None:
    if blocker == "directory":  # tests run as root, who ignores permissions: block the path itself
        path = tmp_path / "state.json"
        path.mkdir()
    else:
        (tmp_path / "run").write_text("a file, not a folder")
        path = tmp_path / "run" / "state.json"
    sink = StateFile(path, interval=0.01)
    sink.start()
    for putts in range(50):
        sink.state(make_state(putts=putts))
        time.sleep(0.005)
    sink.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"cannot write the state file {path}: ")


def test_writing_resumes_after_the_error_is_fixed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="daemon.outlets.statefile")
    path = tmp_path / "state.json"
    path.mkdir()
    sink = StateFile(path, interval=0.05)
    sink.start()
    sink.state(make_state(putts=1))
    time.sleep(0.2)
    path.rmdir()
    wait_for(path, 1)  # retried without a new state
    sink.state(make_state(putts=2))
    wait_for(path, 2)
    sink.close()
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in messages] == [logging.WARNING, logging.INFO]
    assert messages[1][1] == f"the state file {path} is written again"


def write_state(path: Path, interval: float = 2.0, **changes: object) -> ServiceState:
    state = make_state(**changes)
    sink = StateFile(path, interval=interval)
    sink.state(state)
    sink.close()
    return state


def test_read_state_of_a_running_service(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state = write_state(path)
    reading = read_state(path, state.updated_at + 3.0)
    assert reading.problem is None
    assert reading.age == pytest.approx(3.0)
    assert reading.state is not None
    assert reading.state["pid"] == os.getpid()


def test_read_state_without_a_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    reading = read_state(path, time.time())
    assert reading.state is None
    assert reading.age is None
    assert reading.problem == f"no state file at {path}: the service is not running"


def test_read_state_calls_a_file_stale_after_three_missed_writes(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state = write_state(path, interval=1.0)  # stale past 3 * 1 + 2 = 5 s
    assert read_state(path, state.updated_at + 4.9).problem is None
    reading = read_state(path, state.updated_at + 47.2)
    assert reading.problem == "state file is 47 s old: the service is not running or hung"
    assert reading.state is not None  # the last known state is still shown


def test_read_state_notices_the_writer_is_gone(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    pid = dead_pid()
    state = write_state(path, pid=pid)
    reading = read_state(path, state.updated_at + 1.0)
    assert reading.problem == f"process {pid} is not running"
    assert reading.state is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "state file unreadable: "),
        ("[1, 2]", "does not hold a JSON object"),
        ('{"pid": 1}', "no updated_at"),
    ],
)
def test_read_state_of_a_damaged_file(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(text)
    reading = read_state(path, time.time())
    assert reading.problem is not None
    assert reading.problem.startswith("state file unreadable: ")
    assert expected in reading.problem


def test_read_state_notices_the_pid_now_belongs_to_another_process(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as other:
        try:
            state = write_state(path, pid=other.pid)
            assert read_state(path, state.updated_at).problem is None
            data = json.loads(path.read_text())
            started = process_started(other.pid)
            assert started is not None
            assert data["pid_started"] == started
            # The service died and the kernel gave its pid to this process, which started at another time.
            data["pid_started"] -= 1
            path.write_text(json.dumps(data))
            reading = read_state(path, state.updated_at)
            assert reading.problem == f"process {other.pid} is not running (another process has its pid now)"
        finally:
            other.kill()


def test_read_state_never_signals_a_process_group(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state = write_state(path, pid=0)  # os.kill(0, 0) would address our own process group
    reading = read_state(path, state.updated_at)
    assert reading.problem is not None
    assert "no valid pid" in reading.problem


def test_a_negative_interval_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="interval"):
        StateFile(tmp_path / "state.json", interval=-1.0)
