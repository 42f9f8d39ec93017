"""The MQTT outlet against a real mosquitto: what a subscriber (Home Assistant, a dashboard) receives."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from daemon.delivery.reports import ReportContext, SessionReport, build_report
from daemon.models import Session
from daemon.outlets.mqtt import MqttConfig, MqttOutlet
from tests.conftest import REPO, free_port, make_state, putt_event, wait_until
from tests.outlets.conftest import Broker, Subscriber

DEVICE = "rig1"
PREFIX = f"puttbox/{DEVICE}"
DETAILS = ("MAKE - HOLE: TOP - CENTER", "MISS - CATCH: LEFT - RIGHT", "MISS - TIMEOUT: LEFT")


@pytest.fixture
def outlets() -> Iterator[Callable[..., MqttOutlet]]:
    made: list[MqttOutlet] = []

    def make(config: MqttConfig, **kwargs: object) -> MqttOutlet:
        outlet = MqttOutlet(config, **kwargs)  # type: ignore[arg-type]  # the test's keyword mapping
        outlet.start()
        made.append(outlet)
        return outlet

    yield make
    for outlet in made:
        outlet.close()


def config(port: int, **changes: object) -> MqttConfig:
    return MqttConfig(host="127.0.0.1", port=port, device_id=DEVICE, **changes)  # type: ignore[arg-type]


def finished_session() -> tuple[Session, SessionReport]:
    putts = tuple(putt_event(detail, 10.0 * i, 10.0 * i + 2) for i, detail in enumerate(DETAILS))
    session = Session("puttbox_1700000000000", DEVICE, 0.0, 25.0, 1_700_000_000.0, putts, "idle")
    report = build_report(session, ReportContext("Ann", "ann@example.com", "0.1.0", "ball.onnx", "rig.json"))
    return session, report


def test_subscriber_sees_online_state_putts_and_session_in_order(mosquitto: Broker, subscribers, outlets):
    watcher = subscribers(mosquitto.port, f"{PREFIX}/#")
    outlet = outlets(config(mosquitto.port, ha_discovery=False))
    wait_until(lambda: outlet.connected)
    outlet.state(make_state())
    session, report = finished_session()
    for putt in session.putts:
        outlet.putt(putt, session.session_id)
    outlet.session(session, report)
    messages = watcher.wait(lambda ms: any(m.topic.endswith("/session") for m in ms))
    assert [m.topic.removeprefix(PREFIX + "/") for m in messages] == [
        "availability", "state", "putt", "putt", "putt", "session",
    ]  # fmt: skip
    assert messages[0].payload == "online"
    state = messages[1].json()
    assert state["status"] == "in_session"
    assert state["session"] == {"session_id": "puttbox_1700000000000", "putts": 5, "makes": 3, "streak": 2}
    assert [m.json()["detail"] for m in messages[2:5]] == list(DETAILS)
    first = messages[2].json()
    assert first == {
        "session_id": session.session_id, "outcome": "MAKE", "detail": DETAILS[0], "kind": "HOLE",
        "entry_lane": "CENTER", "exit_lane": None, "hole_quadrant": "TOP", "start_time": 0.0, "time": 2.0,
    }  # fmt: skip
    summary = messages[5].json()
    assert summary["total_putts"] == 3
    assert summary["total_makes"] == 1
    assert summary["total_misses"] == 2
    assert summary["make_percentage"] == 33.33
    assert summary["best_streak"] == 1
    assert summary["end_reason"] == "idle"
    assert summary["started_at"] == "2023-11-14T22:13:20.000Z"
    assert not any(m.retain for m in messages[2:])  # events are live only
    late = subscribers(mosquitto.port, f"{PREFIX}/#")  # a late subscriber gets the retained ones
    retained = late.wait(lambda ms: len(ms) >= 2)
    assert {m.topic: m.payload for m in retained if m.retain}[f"{PREFIX}/availability"] == "online"
    assert all(m.retain for m in retained)


def test_problems_become_error_events_when_they_appear_and_clear(mosquitto, subscribers, outlets):
    watcher = subscribers(mosquitto.port, f"{PREFIX}/error")
    outlet = outlets(config(mosquitto.port, ha_discovery=False))
    wait_until(lambda: outlet.connected)
    outlet.state(make_state(problems=("camera lost for 30 s",)))
    outlet.state(make_state(problems=("camera lost for 60 s", "disk full")))
    outlet.state(make_state(problems=("disk full",)))
    events = [m.json() for m in watcher.wait_on(f"{PREFIX}/error", 3)]
    assert events == [
        {"condition": "camera lost for # s", "active": True, "message": "camera lost for 30 s"},
        {"condition": "disk full", "active": True, "message": "disk full"},
        {"condition": "camera lost for # s", "active": False, "message": "camera lost for 60 s"},
    ]


def test_home_assistant_discovery_describes_one_device(mosquitto, subscribers, outlets):
    watcher = subscribers(mosquitto.port, "homeassistant/#")
    outlets(config(mosquitto.port, device_name="Garage mat"), version="0.1.0")
    messages = watcher.wait(lambda ms: len(ms) >= 8)
    configs = {m.topic: m.json() for m in messages}
    late = subscribers(mosquitto.port, "homeassistant/#").wait(lambda ms: len(ms) >= 8)
    assert all(m.retain for m in late)  # a live subscriber sees retain=0; a late one gets them retained
    node = f"puttbox_{DEVICE}"
    assert set(configs) == {
        *(f"homeassistant/sensor/{node}/{name}/config" for name in (
            "status", "putts", "makes", "make_percentage", "streak", "spool_pending", "last_upload",
        )),
        f"homeassistant/binary_sensor/{node}/camera/config",
    }  # fmt: skip
    for payload in configs.values():
        assert payload["state_topic"] == f"{PREFIX}/state"
        assert payload["availability_topic"] == f"{PREFIX}/availability"
        assert (payload["payload_available"], payload["payload_not_available"]) == ("online", "offline")
        assert payload["device"] == {
            "identifiers": [node], "name": "Garage mat", "manufacturer": "putt-daemon",
            "model": "Putting mat tracker", "sw_version": "0.1.0",
        }  # fmt: skip
        assert str(payload["value_template"]).startswith("{{")
    assert len({p["unique_id"] for p in configs.values()}) == 8
    camera = configs[f"homeassistant/binary_sensor/{node}/camera/config"]
    assert camera["device_class"] == "connectivity"
    assert (camera["payload_on"], camera["payload_off"]) == ("ON", "OFF")
    assert configs[f"homeassistant/sensor/{node}/make_percentage/config"]["unit_of_measurement"] == "%"
    # Home Assistant restarting announces itself: the configs are sent again.
    subscribers(mosquitto.port).client.publish("homeassistant/status", "online", qos=1).wait_for_publish(5)
    watcher.wait(lambda ms: len(ms) >= 16)


def test_clean_close_publishes_offline_at_once(mosquitto, subscribers):
    watcher = subscribers(mosquitto.port, f"{PREFIX}/availability")
    outlet = MqttOutlet(config(mosquitto.port, ha_discovery=False))
    outlet.start()
    watcher.wait_on(f"{PREFIX}/availability")
    started = time.monotonic()
    outlet.close()
    assert [m.payload for m in watcher.wait_on(f"{PREFIX}/availability", 2)] == ["online", "offline"]
    assert time.monotonic() - started < 1.0
    assert not outlet.connected


CHILD = """
import sys, time
from daemon.outlets.mqtt import MqttConfig, MqttOutlet
outlet = MqttOutlet(MqttConfig(host="127.0.0.1", port=int(sys.argv[1]), device_id="rig1", keepalive=5))
outlet.start()
while not outlet.connected:
    time.sleep(0.02)
print("connected", flush=True)
time.sleep(600)
"""


def test_sigkill_leaves_the_will_offline_within_one_and_a_half_keepalives(mosquitto, subscribers):
    watcher = subscribers(mosquitto.port, f"{PREFIX}/availability")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(mosquitto.port)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "connected"
        watcher.wait_on(f"{PREFIX}/availability")
        os.kill(child.pid, signal.SIGKILL)
        killed = time.monotonic()
        child.wait(timeout=5)
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    payloads = [m.payload for m in watcher.wait_on(f"{PREFIX}/availability", 2, timeout=10)]
    assert payloads == ["online", "offline"]
    assert time.monotonic() - killed < 1.5 * 5 + 1.0


def test_broker_restart_loses_no_putt(restartable_mosquitto, outlets, caplog):
    caplog.set_level(logging.INFO, logger="daemon.outlets.mqtt")
    broker = restartable_mosquitto
    outlet = outlets(config(broker.port, ha_discovery=False))
    wait_until(lambda: outlet.connected)
    outlet.state(make_state())
    broker.stop()
    wait_until(lambda: not outlet.connected)
    session, _ = finished_session()
    for putt in session.putts:
        outlet.putt(putt, session.session_id)
    broker.start()  # persistence false: nothing is retained from before
    watcher = Subscriber(broker.port, f"{PREFIX}/#")
    try:
        wait_until(lambda: outlet.connected, timeout=10)
        messages = watcher.wait(lambda ms: sum(m.topic.endswith("/putt") for m in ms) >= 3)
    finally:
        watcher.close()
    putts = [m.json()["detail"] for m in messages if m.topic.endswith("/putt")]
    assert putts == list(DETAILS)
    latest = {m.topic: m.payload for m in messages}
    assert latest[f"{PREFIX}/availability"] == "online"
    assert json.loads(latest[f"{PREFIX}/state"])["status"] == "in_session"  # re-sent on reconnect
    lost = [r for r in caplog.records if "lost the MQTT broker" in r.getMessage()]
    back = [r for r in caplog.records if "reachable again" in r.getMessage()]
    assert (len(lost), len(back)) == (1, 1)


def test_a_full_queue_drops_the_oldest_events(tmp_path, outlets, broker_factory, caplog):
    port = free_port()
    outlet = outlets(config(port, ha_discovery=False, max_queued=2))  # nothing listens yet
    session, _ = finished_session()
    for putt in session.putts:
        outlet.putt(putt, session.session_id)
    assert outlet.dropped == 1
    assert not outlet.connected
    broker = broker_factory(tmp_path, port)
    broker.start()
    watcher = Subscriber(port, f"{PREFIX}/putt")
    try:
        wait_until(lambda: outlet.connected, timeout=10)
        received = [m.json()["detail"] for m in watcher.wait_on(f"{PREFIX}/putt", 2)]
    finally:
        watcher.close()
    assert received == list(DETAILS[1:])
    assert len([r for r in caplog.records if "dropping the oldest" in r.getMessage()]) == 1


def test_a_password_broker_takes_the_right_password_and_refuses_the_wrong_one_quietly(
    tmp_path, broker_factory, subscribers, caplog
):
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), "putt", "s3cret"], check=True)
    passwords.chmod(0o600)
    broker = broker_factory(tmp_path, free_port(), f"allow_anonymous false\npassword_file {passwords}\n")
    broker.start()
    good = MqttOutlet(config(broker.port, username="putt", password=SecretStr("s3cret")))
    good.start()
    try:
        wait_until(lambda: good.connected)
    finally:
        good.close()
    caplog.set_level(logging.INFO, logger="daemon.outlets.mqtt")
    before = broker.log.read_text().count("New connection from")
    wrong = MqttOutlet(config(broker.port, username="putt", password=SecretStr("hunter2")))
    wrong.start()
    time.sleep(3.0)
    attempts = broker.log.read_text().count("New connection from") - before
    connected = wrong.connected
    wrong.close()
    assert not connected
    assert 1 <= attempts <= 4  # 1 s, then 2 s of backoff: no tight loop
    refusals = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(refusals) == 1
    assert "refused" in refusals[0].getMessage()
    assert "hunter2" not in caplog.text


def make_certificates(folder: Path) -> dict[str, Path]:
    """A test CA and a server certificate for 127.0.0.1 signed by it."""
    paths = {name: folder / name for name in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt")}
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = ["openssl", "req", *ec, "-subj"]
    ca: list[str | Path] = [*run, "/CN=putt test CA", "-x509", "-days", "1", "-keyout", paths["ca.key"]]
    subprocess.run([*ca, "-out", paths["ca.crt"]], check=True, capture_output=True)
    subprocess.run(
        [*run, "/CN=127.0.0.1", "-keyout", paths["server.key"], "-out", paths["server.csr"]],
        check=True, capture_output=True,
    )  # fmt: skip
    extensions = folder / "san.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1\n")
    subprocess.run(
        ["openssl", "x509", "-req", "-in", paths["server.csr"], "-CA", paths["ca.crt"],
         "-CAkey", paths["ca.key"], "-CAcreateserial", "-days", "1", "-extfile", extensions,
         "-out", paths["server.crt"]],
        check=True, capture_output=True,
    )  # fmt: skip
    return paths


def test_tls_with_a_test_ca(tmp_path, broker_factory, outlets):
    certs = make_certificates(tmp_path)
    broker = broker_factory(
        tmp_path,
        free_port(),
        f"cafile {certs['ca.crt']}\ncertfile {certs['server.crt']}\nkeyfile {certs['server.key']}\n",
    )
    broker.start()
    outlet = outlets(config(broker.port, tls_ca=certs["ca.crt"]))
    wait_until(lambda: outlet.connected)
    plain = MqttOutlet(config(broker.port))  # no TLS: the broker never accepts it
    plain.start()
    time.sleep(0.5)
    assert not plain.connected
    plain.close()


class Recorder:
    """Stands for the service: records what MQTT asked of it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def end_session(self) -> None:
        self.calls.append("end_session")

    def publish_state_now(self) -> None:
        self.calls.append("publish_state_now")


@pytest.fixture
def commanded(mosquitto, subscribers, outlets):
    recorder = Recorder()
    outlet = outlets(
        config(mosquitto.port, ha_discovery=False, commands=True, max_payload=64), commands=recorder
    )
    wait_until(lambda: outlet.connected)
    outlet.state(make_state())
    watcher = subscribers(mosquitto.port, f"{PREFIX}/cmd/#", f"{PREFIX}/state")
    watcher.wait_on(f"{PREFIX}/state")  # the retained one
    return outlet, recorder, watcher, subscribers(mosquitto.port)


def ask(watcher: Subscriber, sender: Subscriber, name: str, payload: bytes) -> dict[str, object]:
    """Send command NAME and wait for its answer."""
    topic = f"{PREFIX}/cmd/{name}"
    seen = len(watcher.on(f"{topic}/result"))
    sender.client.publish(topic, payload, qos=1).wait_for_publish(5)
    return watcher.wait_on(f"{topic}/result", seen + 1)[-1].json()


def test_commands_end_the_session_and_publish_the_state(commanded):
    _, recorder, watcher, sender = commanded
    states = len(watcher.on(f"{PREFIX}/state"))
    assert ask(watcher, sender, "state", b"") == {"ok": True}
    assert len(watcher.wait_on(f"{PREFIX}/state", states + 1)) == states + 1
    assert ask(watcher, sender, "session/end", b"{}") == {"ok": True}
    assert recorder.calls == ["publish_state_now", "end_session"]


@pytest.mark.parametrize(
    ("name", "payload", "error"),
    [
        ("reboot", b"{}", "unknown command"),
        ("session/start", b"{}", "unknown command"),
        ("session/end", b"{not json", "not JSON"),
        ("session/end", b"[1, 2]", "JSON object"),
        ("session/end", b"\xff\xfe", "not JSON"),
        ("session/end", b'{"pad": "' + b"x" * 100 + b'"}', "over 64 bytes"),
    ],
)
def test_bad_commands_are_answered_and_change_nothing(commanded, name, payload, error):
    outlet, recorder, watcher, sender = commanded
    answer = ask(watcher, sender, name, payload)
    assert answer["ok"] is False
    assert error in str(answer["error"])
    assert recorder.calls == []
    assert outlet.connected


# Topic names the protocol allows: mosquitto drops a client that sends controls or non-characters.
SEGMENT = st.text(
    st.characters(blacklist_characters="/+#\x00", blacklist_categories=("Cs", "Cc", "Cn")),
    min_size=1,
    max_size=12,
)
NAMES = st.one_of(st.sampled_from(["state", "session/end"]), SEGMENT, SEGMENT.map("session/{}".format))
PAYLOADS = st.one_of(
    st.binary(max_size=100),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=8,
    ).map(lambda value: json.dumps(value).encode()),
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NAMES.filter(lambda n: n.split("/")[-1] != "result"), payload=PAYLOADS)
def test_fuzzed_commands_never_break_the_outlet(commanded, name, payload):
    outlet, recorder, watcher, sender = commanded
    recorder.calls.clear()
    answer = ask(watcher, sender, name, payload)
    valid = len(payload) <= 64 and (not payload.strip() or payload.lstrip().startswith(b"{"))
    try:
        valid = valid and isinstance(json.loads(payload) if payload.strip() else {}, dict)
    except ValueError:
        valid = False
    expected = {"state": ["publish_state_now"], "session/end": ["end_session"]}.get(name, [])
    assert answer["ok"] is (valid and bool(expected))
    assert recorder.calls == (expected if valid else [])
    assert outlet.connected
