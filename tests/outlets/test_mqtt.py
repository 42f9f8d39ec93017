"""The MQTT outlet against a real mosquitto: what a subscriber (Home Assistant, a dashboard) receives."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import SecretStr

from daemon.delivery.reports import ReportContext, SessionReport, build_report
from daemon.models import ServiceState, Session
from daemon.outlets.mqtt import MqttOutlet
from tests.conftest import REPO, free_port, make_state, putt_event, wait_until
from tests.outlets.conftest import DEVICE, PREFIX, Broker, Subscriber, config

NOT_AUTHORIZED = ReasonCode(PacketTypes.CONNACK, "Not authorized")

DETAILS = ("MAKE - HOLE: TOP - CENTER", "MISS - CATCH: LEFT - RIGHT", "MISS - TIMEOUT: LEFT")


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


def test_state_goes_out_when_it_looks_different_and_every_interval(mosquitto, subscribers, outlets):
    now = [1000.0]
    watcher = subscribers(mosquitto.port, f"{PREFIX}/state")
    outlet = outlets(config(mosquitto.port, ha_discovery=False, state_interval=30.0), clock=lambda: now[0])
    wait_until(lambda: outlet.connected)

    def state(fps: float, **changes: object) -> ServiceState:
        return make_state(fps=fps, started_at=1_700_000_000.0, **changes)

    outlet.state(state(10.0))
    outlet.state(state(11.0, uptime=7390.0))  # only the meters moved: kept for the interval
    now[0] += 29.0
    outlet.state(state(12.0))
    now[0] += 1.0
    outlet.state(state(13.0))  # the interval is up
    outlet.state(state(14.0, status="idle", session=None))  # what an operator sees changed
    outlet.state(state(15.0, status="idle", session=None))
    outlet.state(state(16.0, status="idle", session=None, spool_pending=1))
    states = watcher.wait_on(f"{PREFIX}/state", 4)
    assert [m.json()["fps"] for m in states] == [10.0, 13.0, 14.0, 16.0]
    assert all(m.retain is False for m in states)  # a live subscriber sees retain=0
    late = subscribers(mosquitto.port, f"{PREFIX}/state").wait_on(f"{PREFIX}/state")
    assert [(m.json()["fps"], m.retain) for m in late] == [(16.0, True)]


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


def test_a_half_open_link_is_noticed_by_keepalive_and_loses_or_reorders_no_event(
    proxy, mosquitto, subscribers, outlets, caplog
):
    caplog.set_level(logging.INFO, logger="daemon.outlets.mqtt")
    keepalive = 2
    outlet = outlets(config(proxy.port, ha_discovery=False, keepalive=keepalive))
    wait_until(lambda: outlet.connected)
    watcher = subscribers(mosquitto.port, f"{PREFIX}/putt", f"{PREFIX}/session")  # straight to the broker
    session, report = finished_session()
    outlet.putt(session.putts[0], session.session_id)
    watcher.wait_on(f"{PREFIX}/putt")
    wait_until(lambda: outlet.unacknowledged == 0)  # else paho sends it again: QoS 1 is at least once
    proxy.freeze()
    frozen = time.monotonic()
    outlet.putt(session.putts[1], session.session_id)  # written to a link that carries nothing any more
    wait_until(lambda: not outlet.connected, timeout=4 * keepalive + 5)
    noticed = time.monotonic() - frozen
    outlet.putt(session.putts[2], session.session_id)
    outlet.session(session, report)
    proxy.thaw()
    messages = watcher.wait(lambda ms: any(m.topic.endswith("/session") for m in ms), timeout=30)
    assert [m.json().get("detail", "session") for m in messages] == [*DETAILS, "session"]
    # paho pings after `keepalive` s without a byte from the broker and gives up `keepalive` s after that,
    # looking once a second: a link that dies just after a ping is noticed within 2 x keepalive + 1 s.
    assert keepalive <= noticed <= 2 * keepalive + 1.5
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


def test_a_refusal_that_arrives_after_close_is_not_logged(tmp_path, broker_factory, caplog):
    # paho calls on_connect on its own thread, so the answer to an attempt under way can come after close().
    broker = broker_factory(tmp_path, free_port(), "allow_anonymous false\n")
    broker.start()
    outlet = MqttOutlet(config(broker.port, username="putt", password=SecretStr("hunter2")))
    outlet.start()
    wait_until(lambda: broker.log.read_text().count("not authorised") >= 1)
    outlet.close()
    caplog.clear()
    outlet._on_connect(mqtt.Client(CallbackAPIVersion.VERSION2), None, None, NOT_AUTHORIZED, None)
    assert not outlet.connected
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


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
