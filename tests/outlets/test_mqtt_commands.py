"""MQTT commands against a real mosquitto: each is answered, and nothing malformed changes anything."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings

from daemon.outlets.mqtt import MqttOutlet
from daemon.outlets.mqtt_commands import CommandError
from tests.conftest import make_state, wait_until
from tests.outlets.conftest import NAMES, PAYLOADS, PREFIX, Broker, Subscriber, ask, config, well_formed

MAX_PAYLOAD = 64  # what PAYLOADS oversteps


class Recorder:
    """Stands for the service: records what MQTT asked of it; a session is open once started."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.session_open = False
        self.picture: bytes | None = b"\xff\xd8 a JPEG's first and last bytes \xff\xd9"

    def start_session(self) -> None:
        if self.session_open:
            raise CommandError("session rig1_1 is already open")
        self.calls.append("start_session")
        self.session_open = True

    def end_session(self) -> None:
        self.calls.append("end_session")
        self.session_open = False

    def publish_state_now(self) -> None:
        self.calls.append("publish_state_now")

    def snapshot_jpeg(self, draw: bool) -> bytes | None:
        self.calls.append(f"snapshot_jpeg(draw={draw})")
        return self.picture


def commanded_outlet(
    mosquitto: Broker,
    subscribers: Callable[..., Subscriber],
    outlets: Callable[..., MqttOutlet],
    **changes: object,
) -> tuple[MqttOutlet, Recorder, Subscriber, Subscriber]:
    recorder = Recorder()
    outlet = outlets(
        config(mosquitto.port, ha_discovery=False, commands=True, max_payload=MAX_PAYLOAD, **changes),
        commands=recorder,
    )
    wait_until(lambda: outlet.connected)
    outlet.state(make_state())
    watcher = subscribers(mosquitto.port, f"{PREFIX}/cmd/#", f"{PREFIX}/state", f"{PREFIX}/snapshot")
    watcher.wait_on(f"{PREFIX}/state")  # the retained one
    return outlet, recorder, watcher, subscribers(mosquitto.port)


@pytest.fixture
def commanded(mosquitto, subscribers, outlets):
    """An outlet taking commands, snapshots off: (outlet, recorder, watcher, sender)."""
    return commanded_outlet(mosquitto, subscribers, outlets)


def test_commands_start_and_end_a_session_and_publish_the_state(commanded):
    _, recorder, watcher, sender = commanded
    states = len(watcher.on(f"{PREFIX}/state"))
    assert ask(watcher, sender, f"{PREFIX}/cmd/state", b"") == {"ok": True}
    assert len(watcher.wait_on(f"{PREFIX}/state", states + 1)) == states + 1
    assert ask(watcher, sender, f"{PREFIX}/cmd/session/start", b"{}") == {"ok": True}
    assert ask(watcher, sender, f"{PREFIX}/cmd/session/start", b"") == {
        "ok": False, "error": "session rig1_1 is already open",
    }  # fmt: skip
    assert ask(watcher, sender, f"{PREFIX}/cmd/session/end", b"{}") == {"ok": True}
    assert recorder.calls == ["publish_state_now", "start_session", "end_session"]


def test_snapshots_are_off_unless_switched_on(commanded):
    _, recorder, watcher, sender = commanded
    assert ask(watcher, sender, f"{PREFIX}/cmd/snapshot", b"{}") == {
        "ok": False, "error": "snapshots are off (PUTT_MQTT_SNAPSHOT=false)",
    }  # fmt: skip
    assert recorder.calls == []
    assert watcher.on(f"{PREFIX}/snapshot") == []


def test_a_snapshot_is_published_before_its_answer(mosquitto, subscribers, outlets):
    _, recorder, watcher, sender = commanded_outlet(mosquitto, subscribers, outlets, snapshots=True)
    assert ask(watcher, sender, f"{PREFIX}/cmd/snapshot", b"") == {"ok": True}
    topics = [m.topic for m in watcher.messages]
    assert topics.index(f"{PREFIX}/snapshot") < topics.index(f"{PREFIX}/cmd/snapshot/result")
    (picture,) = watcher.on(f"{PREFIX}/snapshot")
    assert recorder.picture is not None
    assert picture.payload == recorder.picture.decode(errors="replace")
    assert not picture.retain
    assert recorder.calls == ["snapshot_jpeg(draw=True)"]
    recorder.picture = None  # no frame has come from the camera yet
    assert ask(watcher, sender, f"{PREFIX}/cmd/snapshot", b"") == {
        "ok": False,
        "error": "no camera frame yet",
    }
    assert len(watcher.on(f"{PREFIX}/snapshot")) == 1


@pytest.mark.parametrize(
    ("name", "payload", "error"),
    [
        ("reboot", b"{}", "unknown command"),
        ("session/pause", b"{}", "unknown command"),
        ("session/end", b"{not json", "not JSON"),
        ("session/end", b"[1, 2]", "JSON object"),
        ("session/start", b"\xff\xfe", "not JSON"),
        ("session/start", b'{"pad": "' + b"x" * 100 + b'"}', f"over {MAX_PAYLOAD} bytes"),
        ("snapshot", b"{" + b" " * 200_000 + b"}", f"over {MAX_PAYLOAD} bytes"),
    ],
)
def test_bad_commands_are_answered_and_change_nothing(commanded, name, payload, error):
    outlet, recorder, watcher, sender = commanded
    answer = ask(watcher, sender, f"{PREFIX}/cmd/{name}", payload)
    assert answer["ok"] is False
    assert error in str(answer["error"])
    assert recorder.calls == []
    assert outlet.connected


EXPECTED = {
    "state": ["publish_state_now"],
    "session/start": ["start_session"],
    "session/end": ["end_session"],
}  # snapshot is refused: snapshots are off


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NAMES, payload=PAYLOADS)
def test_fuzzed_commands_never_break_the_outlet(commanded, name, payload):
    outlet, recorder, watcher, sender = commanded
    recorder.calls.clear()
    recorder.session_open = False
    answer = ask(watcher, sender, f"{PREFIX}/cmd/{name}", payload)
    expected = EXPECTED.get(name, []) if well_formed(payload, MAX_PAYLOAD) else []
    assert answer["ok"] is bool(expected)
    assert recorder.calls == expected
    assert outlet.connected
