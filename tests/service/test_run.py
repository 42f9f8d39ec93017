"""`putt-daemon run` as systemd runs it: a real process on `sim://`, a real NOTIFY_SOCKET, real signals."""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServiceProcess, service_state, wait_until

SIM = "sim://?seed=0&putts=4&realtime=1"


def base_env(cli_env: dict[str, str], state: Path, **settings: str) -> dict[str, str]:
    env = {**cli_env, "PUTT_STATE_DIR": str(state), "PUTT_CAMERA_SOURCE": SIM}
    env |= {f"PUTT_{key.upper()}": value for key, value in settings.items()}
    return env


def wait_state(
    state: Path, predicate: Callable[[dict[str, Any]], object], timeout: float = 60.0
) -> dict[str, Any]:
    """The state file's content once PREDICATE holds for it."""
    wait_until(lambda: (data := service_state(state)) and predicate(data), timeout)
    return service_state(state)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for process in started:
        process.close()


def test_ready_status_watchdog_then_sigterm_mid_session_leaves_a_complete_report(
    tmp_path: Path, cli_env: dict[str, str], service: list[ServiceProcess]
) -> None:
    state = tmp_path / "state"
    run = ServiceProcess(tmp_path, base_env(cli_env, state), watchdog_usec=1_000_000)
    service.append(run)
    ready = run.wait_datagram(lambda d: "READY=1" in d)
    assert "STATUS=" in ready or any("STATUS=" in d for d in run.datagrams)
    pings = [d for d in run.drain(2.0) if "WATCHDOG=1" in d]
    assert 3 <= len(pings) <= 8  # every third of the 1 s watchdog interval, not every frame
    wait_state(state, lambda s: s["session"] and s["session"]["putts"] >= 1)
    assert any("putts" in d for d in run.datagrams if d.startswith("STATUS="))
    started = time.monotonic()
    assert run.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 10
    run.wait_datagram(lambda d: "STOPPING=1" in d, timeout=2)
    (report,) = (state / "spool" / "pending").glob("*.json")
    data = json.loads(report.read_text())
    assert data["end_reason"] == "shutdown"
    assert data["total_putts"] >= 1
    assert report.with_suffix(".csv").is_file()
    assert not list((state / "journal").glob("*.journal"))
    final = service_state(state)
    assert final["status"] == "stopping"


def test_sigint_stops_the_same_way(
    tmp_path: Path, cli_env: dict[str, str], service: list[ServiceProcess]
) -> None:
    state = tmp_path / "state"
    run = ServiceProcess(tmp_path, base_env(cli_env, state))
    service.append(run)
    run.wait_datagram(lambda d: "READY=1" in d)
    assert run.stop(signal.SIGINT) == 0
    run.wait_line(r"service stopped \(shutdown\)", timeout=1)


def test_sighup_with_a_bad_env_file_keeps_running_and_names_every_error(
    tmp_path: Path, cli_env: dict[str, str], service: list[ServiceProcess]
) -> None:
    state = tmp_path / "state"
    env_file = tmp_path / "putt-daemon.env"
    env_file.write_text(f"PUTT_STATE_DIR={state}\nPUTT_CAMERA_SOURCE={SIM}\n")
    run = ServiceProcess(tmp_path, cli_env, "--env-file", str(env_file), "--no-watch")
    service.append(run)
    run.wait_datagram(lambda d: "READY=1" in d)
    env_file.write_text(
        f"PUTT_STATE_DIR={state}\nPUTT_CAMERA_SOURCE={SIM}\nPUTT_CAMERA_FPS=-5\nPUTT_MODEL_THREADS=0\n"
    )
    run.process.send_signal(signal.SIGHUP)
    run.wait_datagram(lambda d: "RELOADING=1" in d and "MONOTONIC_USEC=" in d)
    run.wait_line(r"reload refused.*PUTT_CAMERA_FPS")
    run.wait_line(r"reload refused.*PUTT_MODEL_THREADS")
    run.wait_datagram(lambda d: "READY=1" in d)
    data = wait_state(state, lambda s: s["problems"])
    assert data["status"] == "degraded"
    assert "PUTT_CAMERA_FPS" in str(data["problems"])
    assert run.process.poll() is None
    assert run.stop() == 0


def test_a_replaced_env_file_is_applied_without_a_signal(
    tmp_path: Path, cli_env: dict[str, str], service: list[ServiceProcess]
) -> None:
    state = tmp_path / "state"
    env_file = tmp_path / "putt-daemon.env"
    env_file.write_text(f"PUTT_STATE_DIR={state}\nPUTT_CAMERA_SOURCE={SIM}\n")
    run = ServiceProcess(tmp_path, cli_env, "--env-file", str(env_file))
    service.append(run)
    run.wait_datagram(lambda d: "READY=1" in d)
    before = wait_state(state, lambda s: "config_hash" in s)["config_hash"]
    replacement = tmp_path / "new.env"
    replacement.write_text(
        f"PUTT_STATE_DIR={state}\nPUTT_CAMERA_SOURCE={SIM}\nPUTT_SESSION_IDLE_TIMEOUT=30  # shorter\n"
    )
    replacement.replace(env_file)  # how a remote tool copies a file in
    run.wait_line(r"reload: applying changes to sessions \(PUTT_SESSION_IDLE_TIMEOUT\)", timeout=10)
    wait_state(state, lambda s: s["config_hash"] != before, timeout=10)
    assert run.stop() == 0


def test_a_stalled_camera_is_reported_lost_and_recovers(
    tmp_path: Path, cli_env: dict[str, str], service: list[ServiceProcess]
) -> None:
    state = tmp_path / "state"
    env = base_env(cli_env, state, camera_stall_seconds="1")
    env["PUTT_CAMERA_SOURCE"] = SIM + "&stall_at=2&stall_for=600"
    run = ServiceProcess(tmp_path, env, watchdog_usec=600_000)
    service.append(run)
    run.wait_datagram(lambda d: "READY=1" in d)
    lost = run.wait_line(r"camera .*lost", timeout=15)
    # Lost, then reconnecting: the loop may see either, the service is degraded in both.
    away = re.compile(r"STATUS=camera (lost|reconnecting), degraded, .*no frame for")
    run.wait_datagram(lambda d: away.search(d) is not None, 10)
    # The state file is rewritten at most every status interval, and each outage here lasts about half a
    # second (the simulator stalls again 2 s after every reopen): the count shows them all.
    wait_state(state, lambda s: s["camera_outages"] >= 1, timeout=10)
    # The loop and its watchdog go on while the camera is away.
    assert any("WATCHDOG=1" in d for d in run.drain(1.0))
    run.wait_line(r"camera .*recovered", start=lost, timeout=20)
    assert len([line for line in run.lines if "lost" in line and "camera" in line]) >= 1
    assert run.stop() == 0
    final = service_state(state)
    assert final["camera_outages"] == len(re.findall(r"camera \S+ lost", "\n".join(run.lines)))
