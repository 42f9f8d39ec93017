"""The service in this process, with the clock and the sinks in the test's hands."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from daemon.delivery.reports import SessionReport
from daemon.models import Frame, PuttEvent, ServiceState, Session
from daemon.outlets.notify import SystemdNotifier
from daemon.service import Clock, Service, ServicePlan
from daemon.settings import Settings
from daemon.vision.pipeline import PipelineStep
from tests.conftest import wait_until

SIM = "sim://?seed=0&putts=4&realtime=1"


@dataclass
class Recorder:
    """An event sink that keeps everything it is given."""

    putts: list[PuttEvent] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    states: list[ServiceState] = field(default_factory=list)

    def putt(self, event: PuttEvent, session_id: str) -> None:  # noqa: ARG002  # the protocol's signature
        self.putts.append(event)

    def session(self, session: Session, report: SessionReport) -> None:  # noqa: ARG002  # the protocol
        self.sessions.append(session)

    def state(self, state: ServiceState) -> None:
        self.states.append(state)

    def close(self) -> None:
        pass


@dataclass
class JumpingClock:
    """Real time, plus a jump of the wall clock the test can set (NTP correcting a box with no RTC)."""

    jump: float = 0.0

    def wall(self) -> float:
        return time.time() + self.jump


def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **values: str) -> Settings:
    monkeypatch.setenv("PUTT_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("PUTT_CAMERA_SOURCE", SIM)
    for key, value in values.items():
        monkeypatch.setenv(f"PUTT_{key.upper()}", value)
    return Settings()


@pytest.fixture
def running() -> Iterator[list[tuple[Service, threading.Thread]]]:
    started: list[tuple[Service, threading.Thread]] = []
    yield started
    for service, thread in started:
        service.request_stop()
        thread.join(timeout=15)


def start(service: Service, running: list[tuple[Service, threading.Thread]]) -> threading.Thread:
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    running.append((service, thread))
    return thread


def test_a_wall_clock_jump_neither_ends_nor_stretches_a_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, running: list[tuple[Service, threading.Thread]]
) -> None:
    clock = JumpingClock()
    recorder = Recorder()
    plan = ServicePlan(mode="live", event_sinks=(recorder,), clock=Clock(wall=clock.wall))
    service = Service(settings(tmp_path, monkeypatch, session_idle_timeout="10"), plan)
    thread = start(service, running)
    wait_until(lambda: recorder.putts, timeout=60)
    clock.jump = 3 * 3600.0  # NTP sets the clock forward by hours mid-session
    time.sleep(3)
    assert recorder.sessions == []  # an idle timeout on wall time would have ended it at once
    clock.jump = -3 * 3600.0
    time.sleep(1)
    assert recorder.sessions == []
    service.request_stop()
    thread.join(timeout=15)
    (session,) = recorder.sessions
    assert session.end_reason == "shutdown"
    # The report's span is the monotonic span, whatever the wall clock did in between.
    assert 0 <= session.end_time - session.start_time < 60


def test_an_open_session_ends_after_the_idle_timeout_with_no_frames_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, running: list[tuple[Service, threading.Thread]]
) -> None:
    recorder = Recorder()
    plan = ServicePlan(mode="live", event_sinks=(recorder,))
    # The camera freezes for ten minutes and is not declared lost: no frame reaches the loop at all.
    values = {"session_idle_timeout": "5", "camera_stall_seconds": "600"}
    base = settings(tmp_path, monkeypatch, **values)
    frozen = base.camera.model_copy(update={"source": SIM + "&stall_at=14&stall_for=600"})
    service = Service(base.model_copy(update={"camera": frozen}), plan)
    start(service, running)
    wait_until(lambda: recorder.putts, timeout=30)
    wait_until(lambda: recorder.sessions, timeout=40)
    assert recorder.sessions[0].end_reason == "idle"
    assert recorder.states[-1].fps == 0.0
    # Counted, and handed to the sinks, but not held: a service running for months would keep them all.
    assert recorder.states[-1].putts == len(recorder.putts) > 0
    assert recorder.states[-1].sessions == 1
    service.request_stop()
    running[-1][1].join(timeout=15)
    # What a live service holds on to:
    assert service._putts == []
    assert service._sessions == []


@dataclass
class StuckObserver:
    """A frame observer that can hang the loop, as a bug in a stage would."""

    hang: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    hanging: threading.Event = field(default_factory=threading.Event)  # the loop is inside, stuck

    def add(self, frame: Frame, step: PipelineStep) -> None:  # noqa: ARG002  # the protocol's signature
        if self.hang.is_set():
            self.hanging.set()
            self.release.wait(timeout=30)

    def close(self) -> None:
        self.release.set()


def test_a_stuck_vision_loop_stops_the_watchdog_pings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, running: list[tuple[Service, threading.Thread]]
) -> None:
    import socket

    path = tmp_path / "notify.sock"
    # Closed however the test ends, so a failure here is not reported again in a later test.
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(str(path))
        receiver.settimeout(0.1)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))  # libsystemd's sd_notify reads it from the environment
        notifier = SystemdNotifier.from_environment({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "300000"})
        stuck = StuckObserver()
        plan = ServicePlan(mode="live", lifecycle=notifier, observers=(stuck,))
        start(Service(settings(tmp_path, monkeypatch), plan), running)

        def pings(seconds: float) -> int:
            count, deadline = 0, time.monotonic() + seconds
            while time.monotonic() < deadline:
                try:
                    count += "WATCHDOG=1" in receiver.recv(4096).decode()
                except TimeoutError:
                    continue
            return count

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if "READY=1" in receiver.recv(4096).decode():
                    break
            except TimeoutError:
                continue
        assert pings(1.0) >= 5  # every 0.1 s
        stuck.hang.set()
        assert stuck.hanging.wait(timeout=10)
        # What the loop sent before it got stuck is still queued; from here on nothing may come.
        receiver.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                receiver.recv(4096)
        receiver.settimeout(0.1)
        assert pings(1.0) == 0
        stuck.hang.clear()
        stuck.release.set()
        assert pings(1.0) >= 5


def test_an_operator_can_end_the_open_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, running: list[tuple[Service, threading.Thread]]
) -> None:
    recorder = Recorder()
    service = Service(settings(tmp_path, monkeypatch), ServicePlan(mode="live", event_sinks=(recorder,)))
    start(service, running)
    wait_until(lambda: recorder.putts, timeout=60)
    states_before = len(recorder.states)
    service.publish_state_now()
    wait_until(lambda: len(recorder.states) > states_before, timeout=2)
    service.end_session()
    wait_until(lambda: recorder.sessions, timeout=5)
    assert recorder.sessions[0].end_reason == "command"
    assert len(recorder.sessions[0].putts) == len(recorder.putts)
