"""The service on a real broker: availability, state, each putt and session, commands, offline on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from hypothesis import assume, given, settings

from tests.conftest import ServiceProcess
from tests.outlets.conftest import KNOWN, NAMES, PAYLOADS, Broker, Subscriber, ask, well_formed

SIM = "sim://?seed=0&putts=3&realtime=1"


def test_run_publishes_putts_sessions_and_goes_offline_on_sigterm(
    tmp_path: Path, cli_env: dict[str, str], mosquitto: Broker
) -> None:
    watcher = Subscriber(mosquitto.port, "puttbox/box7/#")
    env = cli_env | {
        "PUTT_STATE_DIR": str(tmp_path / "state"), "PUTT_CAMERA_SOURCE": SIM, "PUTT_DEVICE_ID": "box7",
        "PUTT_SESSION_IDLE_TIMEOUT": "5", "PUTT_MQTT_HOST": "127.0.0.1",
        "PUTT_MQTT_PORT": str(mosquitto.port),
    }  # fmt: skip
    run = ServiceProcess(tmp_path, env)
    try:
        watcher.wait(
            lambda ms: any(m.topic.endswith("/availability") and m.payload == "online" for m in ms), 30
        )
        putt = watcher.wait_on("puttbox/box7/putt", 1, timeout=90)[0].json()
        assert str(putt["detail"]).startswith(("MAKE", "MISS"))
        summary = watcher.wait_on("puttbox/box7/session", 1, timeout=30)[0].json()
        assert isinstance(summary["total_putts"], int)
        assert summary["total_putts"] >= 1
        state = watcher.on("puttbox/box7/state")[-1]
        assert state.json()["camera"] == "ok"
        assert run.stop(signal.SIGTERM) == 0
        watcher.wait(lambda ms: ms[-1].topic.endswith("/availability") and ms[-1].payload == "offline", 5)
    finally:
        run.close()
        watcher.close()


def test_demo_publishes_when_a_broker_is_set(
    tmp_path: Path, cli_env: dict[str, str], mosquitto: Broker
) -> None:
    watcher = Subscriber(mosquitto.port, "puttbox/demo1/#")
    env = cli_env | {
        "PUTT_DEVICE_ID": "demo1",
        "PUTT_MQTT_HOST": "127.0.0.1",
        "PUTT_MQTT_PORT": str(mosquitto.port),
    }
    try:
        result = subprocess.run(
            [sys.executable, "-m", "daemon", "demo", "--putts", "2", "--out", str(tmp_path / "demo")],
            capture_output=True, text=True, env=env, timeout=300, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        putts = watcher.wait_on("puttbox/demo1/putt", 2, timeout=10)
        assert [json.loads(m.payload)["detail"] for m in putts] == [
            line.split("  ")[-1].strip() for line in result.stdout.splitlines() if line.strip()[:1].isdigit()
        ][:2]
        watcher.wait_on("puttbox/demo1/session", 1, timeout=10)
    finally:
        watcher.close()


def test_commands_reach_the_running_service_and_fuzz_changes_nothing(
    tmp_path: Path, cli_env: dict[str, str], mosquitto: Broker
) -> None:
    prefix = "puttbox/box8"
    watcher = Subscriber(mosquitto.port, f"{prefix}/#")
    sender = Subscriber(mosquitto.port)
    env = cli_env | {
        "PUTT_STATE_DIR": str(tmp_path / "state"), "PUTT_DEVICE_ID": "box8",
        "PUTT_CAMERA_SOURCE": "sim://?seed=0&putts=1&realtime=1",  # one putt, then over 2 min of nobody
        "PUTT_SESSION_IDLE_TIMEOUT": "5", "PUTT_MQTT_HOST": "127.0.0.1",
        "PUTT_MQTT_PORT": str(mosquitto.port), "PUTT_MQTT_HA_DISCOVERY": "false",
        "PUTT_MQTT_COMMANDS": "true", "PUTT_MQTT_SNAPSHOT": "true",
    }  # fmt: skip
    run = ServiceProcess(tmp_path, env)

    def state_now() -> dict[str, object]:
        seen = len(watcher.on(f"{prefix}/state"))
        assert ask(watcher, sender, f"{prefix}/cmd/state", b"") == {"ok": True}
        return watcher.wait_on(f"{prefix}/state", seen + 1)[-1].json()

    @settings(max_examples=40, deadline=None, database=None)
    @given(name=NAMES, payload=PAYLOADS)
    def refused(name: str, payload: bytes) -> None:
        assume(name not in KNOWN or not well_formed(payload, 4096))
        assert ask(watcher, sender, f"{prefix}/cmd/{name}", payload)["ok"] is False

    try:
        watcher.wait_on(f"{prefix}/session", 1, timeout=120)  # the simulated putt's session is over
        before = state_now()
        assert before["session"] is None
        refused()
        after = state_now()
        assert run.process.poll() is None
        assert {k: after[k] for k in ("status", "session", "putts", "sessions")} == {
            k: before[k] for k in ("status", "session", "putts", "sessions")
        }
        assert ask(watcher, sender, f"{prefix}/cmd/session/start", b"{}") == {"ok": True}
        opened = watcher.wait(lambda ms: ms[-1].topic.endswith("/state") and bool(ms[-1].json()["session"]))[
            -1
        ]
        session = opened.json()["session"]
        assert isinstance(session, dict)
        assert (opened.json()["status"], session["putts"]) == ("in_session", 0)
        assert ask(watcher, sender, f"{prefix}/cmd/session/start", b"") == {
            "ok": False, "error": f"session {session['session_id']} is already open",
        }  # fmt: skip
        assert ask(watcher, sender, f"{prefix}/cmd/session/end", b"") == {"ok": True}
        watcher.wait(lambda ms: ms[-1].topic.endswith("/state") and ms[-1].json()["session"] is None)
        assert len(watcher.on(f"{prefix}/session")) == 1  # a session with no putt is no session
        assert ask(watcher, sender, f"{prefix}/cmd/snapshot", b"") == {"ok": True}
        picture = watcher.on(f"{prefix}/snapshot")[-1].data
        image = cv2.imdecode(np.frombuffer(picture, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None
        assert image.shape == (480, 640, 3)
        assert run.stop(signal.SIGTERM) == 0
    finally:
        run.close()
        watcher.close()
        sender.close()
