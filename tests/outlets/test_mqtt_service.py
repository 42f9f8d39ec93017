"""The service on a real broker: availability, state, each putt and session, offline on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import ServiceProcess
from tests.outlets.conftest import Broker, Subscriber

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
