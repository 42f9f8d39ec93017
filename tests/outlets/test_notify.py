"""The systemd notifier against a real notify socket: the datagrams systemd would receive."""

from __future__ import annotations

import itertools
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.models import ServiceState
from daemon.outlets.notify import SystemdNotifier, describe
from tests.conftest import REPO
from tests.conftest import make_state as shared_state


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_state(**changes: object) -> ServiceState:
    return shared_state(
        **(
            {
                "fps": 29.84,
                "inference_ms": 4.12,
                "gate_skipped": 0.6,
                "started_at": 1_700_000_000.0,
                "updated_at": 1_700_000_100.0,
                "uptime": 100.0,
            }
            | changes
        )
    )


class Listener:
    """The systemd side: a datagram socket bound where NOTIFY_SOCKET points."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))

    def take(self) -> list[str]:
        """Every datagram received so far; sd_notify has sent them before it returned."""
        messages = []
        self.sock.setblocking(False)
        while True:
            try:
                messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return messages

    def wait(self, timeout: float = 10.0) -> str:
        """The next datagram, waiting for it (a subprocess sends them)."""
        self.sock.settimeout(timeout)
        return self.sock.recv(4096).decode()

    def close(self) -> None:
        self.sock.close()
        self.path.unlink(missing_ok=True)


@pytest.fixture
def listener(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Listener]:
    path = tmp_path / "notify.sock"
    assert len(str(path)) < 100, "AF_UNIX paths are limited to 108 bytes"
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))  # sd_notify reads the process environment itself
    peer = Listener(path)
    yield peer
    peer.close()


def notifier(listener: Listener, clock: FakeClock | None = None, **env: str) -> SystemdNotifier:
    environ = {"NOTIFY_SOCKET": str(listener.path), **env}
    return SystemdNotifier.from_environment(environ, clock=clock or FakeClock())


def test_ready_carries_the_current_status(listener: Listener) -> None:
    plain = notifier(listener)
    plain.ready()
    assert listener.take() == ["READY=1"]
    plain.status("loading model")
    plain.ready()
    assert listener.take() == ["STATUS=loading model", "READY=1\nSTATUS=loading model"]


def test_status_is_sent_only_when_it_changes(listener: Listener) -> None:
    sink = notifier(listener)
    for text in ("starting", "starting", "camera ok", "camera ok", "starting", "two\nlines"):
        sink.status(text)
    assert listener.take() == ["STATUS=starting", "STATUS=camera ok", "STATUS=starting", "STATUS=two lines"]


def test_state_becomes_a_one_line_status_sent_on_change(listener: Listener) -> None:
    sink = notifier(listener)
    state = make_state()
    sink.state(state)
    sink.state(make_state(updated_at=state.updated_at + 1, uptime=101.0))  # same line
    sink.state(make_state(camera="lost", session=None, status="idle", problems=("camera lost for 30 s",)))
    assert listener.take() == [
        (
            "STATUS=camera ok, 29.8 fps, 4.1 ms inference, session puttbox_1700000000000: 5 putts, 3 makes, "
            "12 putts since start"
        ),
        "STATUS=camera lost, idle, 12 putts since start - camera lost for 30 s",
    ]
    sink.close()


def test_describe_keeps_many_problems_short() -> None:
    line = describe(make_state(problems=("disk full", "upload refused", "clock not synced")))
    assert line.endswith(" - disk full; upload refused (+1 more)")
    assert "\n" not in line


def test_watchdog_pings_at_most_every_third_of_the_interval(listener: Listener) -> None:
    clock = FakeClock()
    sink = notifier(listener, clock, WATCHDOG_USEC="3000000")  # 3 s: a ping at most every second
    assert sink.watchdog_interval == 3.0
    sent = []
    for _ in range(50):  # 50 loop iterations 0.1 s apart: 5 s
        sink.heartbeat()
        sent.append(len(listener.take()))
        clock.now += 0.1
    assert set(listener.take()) == set()
    ping_steps = [i for i, count in enumerate(sent) if count]
    assert all(sent[i] == 1 for i in ping_steps)
    assert ping_steps[0] == 0  # the first iteration pings at once
    assert [b - a for a, b in itertools.pairwise(ping_steps)] == [10] * 4


def test_watchdog_stays_silent_when_the_loop_does_not_call(listener: Listener) -> None:
    clock = FakeClock()
    sink = notifier(listener, clock, WATCHDOG_USEC="3000000")
    sink.heartbeat()
    assert listener.take() == ["WATCHDOG=1"]
    clock.now += 60  # a stalled loop: nothing else pings for it
    assert listener.take() == []


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"},
        {"WATCHDOG_USEC": "soon"},
        {"WATCHDOG_USEC": "0"},
    ],
    ids=["unset", "other-pid", "not-a-number", "zero"],
)
def test_no_watchdog_pings_unless_systemd_asks_this_process(listener: Listener, env: dict[str, str]) -> None:
    clock = FakeClock()
    sink = notifier(listener, clock, **env)
    for _ in range(20):
        sink.heartbeat()
        clock.now += 10
    assert sink.watchdog_interval is None
    assert listener.take() == []


def test_watchdog_pid_of_this_process_pings(listener: Listener) -> None:
    sink = notifier(listener, WATCHDOG_USEC="1000000", WATCHDOG_PID=str(os.getpid()))
    sink.heartbeat()
    assert listener.take() == ["WATCHDOG=1"]


def test_reloading_sends_the_monotonic_time_and_reloaded_is_ready(listener: Listener) -> None:
    sink = notifier(listener)
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    sink.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    (message,) = listener.take()
    first, second = message.split("\n")
    assert first == "RELOADING=1"
    name, _, value = second.partition("=")
    assert name == "MONOTONIC_USEC"
    assert before <= int(value) <= after
    sink.reloaded()
    sink.stopping()
    assert listener.take() == ["READY=1", "STOPPING=1"]


def test_without_notify_socket_nothing_is_sent(listener: Listener) -> None:
    sink = SystemdNotifier.from_environment({"WATCHDOG_USEC": "1000000"})
    sink.ready()
    sink.status("x")
    sink.heartbeat()
    sink.stopping()
    assert sink.watchdog_interval is None
    assert listener.take() == []


def test_a_vanished_socket_is_logged_once_and_its_return_once(
    listener: Listener, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="daemon.outlets.notify")
    clock = FakeClock()
    sink = notifier(listener, clock, WATCHDOG_USEC="300000")
    listener.close()
    for i in range(5):
        sink.status(f"status {i}")
        sink.heartbeat()
        clock.now += 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(listener.path) in warnings[0].getMessage()
    back = Listener(listener.path)
    try:
        sink.status("back")
        sink.status("again")
        assert back.take() == ["STATUS=back", "STATUS=again"]
    finally:
        back.close()
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos == [f"notifying systemd at {listener.path} works again"]


def run_notifier(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = (
        "import os\n"
        "from daemon.outlets.notify import SystemdNotifier\n"
        "notifier = SystemdNotifier.from_environment(os.environ)\n"
        "notifier.status('warming up')\n"
        "notifier.ready()\n"
        "notifier.heartbeat()\n"
        "notifier.heartbeat()\n"  # within a third of the interval: no second ping
        "notifier.stopping()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_real_process_reads_its_environment(listener: Listener, cli_env: dict[str, str]) -> None:
    env = {**cli_env, "NOTIFY_SOCKET": str(listener.path), "WATCHDOG_USEC": "30000000"}
    env.pop("WATCHDOG_PID", None)
    result = run_notifier(env)
    assert result.returncode == 0, result.stderr
    received = [listener.wait() for _ in range(4)]
    assert received == ["STATUS=warming up", "READY=1\nSTATUS=warming up", "WATCHDOG=1", "STOPPING=1"]
    assert listener.take() == []

    result = run_notifier({**env, "WATCHDOG_PID": "1"})  # the watchdog is meant for another process
    assert result.returncode == 0, result.stderr
    received = [listener.wait() for _ in range(3)]
    assert received == ["STATUS=warming up", "READY=1\nSTATUS=warming up", "STOPPING=1"]
    assert listener.take() == []
