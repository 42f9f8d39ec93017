"""`putt-daemon queue`: list, show, add, retry, purge and flush, as a real process, beside a spool in use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.delivery.reports import ReportContext, build_report, write_report
from daemon.delivery.spool import Spool, SpoolConfig
from daemon.models import Session
from tests.conftest import putt_event
from tests.delivery.api_server import ApiServer, Received, Reply

CONTEXT = ReportContext("Pat", "", "0.1.0", "model", "cal")


def report_pair(folder: Path, number: int) -> Path:
    putts = (
        putt_event("MAKE - HOLE: TOP - CENTER", 10.0, 11.5),
        putt_event("MISS - TIMEOUT: LEFT", 20.0, 24.0),
    )
    session = Session(f"box-1_{number:04d}", "box-1", 10.0, 24.0, 1_700_000_000.0 + number, putts, "idle")
    json_path, _ = write_report(build_report(session, CONTEXT), folder)
    return json_path


def queue(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon", "queue", *args],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture
def env(tmp_path: Path, cli_env: dict[str, str]) -> dict[str, str]:
    return cli_env | {"PUTT_STATE_DIR": str(tmp_path / "state")}


def test_add_list_show_and_flush_to_a_real_server(tmp_path: Path, env: dict[str, str]) -> None:
    reports = tmp_path / "reports"
    first, second = report_pair(reports, 1), report_pair(reports, 2)
    added = queue("add", str(first), str(second), env=env)
    assert added.returncode == 0, added.stderr
    listed = queue("list", env=env)
    assert "pending   box-1_0001" in listed.stdout
    assert "2 pending, 0 dead, 0 sent" in listed.stdout
    shown = queue("show", "box-1_0002", env=env)
    assert json.loads(shown.stdout.split("\n", 1)[1])["total_putts"] == 2
    again = queue("add", str(first), env=env)
    assert again.returncode == 1
    assert "already in pending/" in again.stderr
    no_url = queue("flush", env=env)
    assert no_url.returncode == 78
    assert "PUTT_UPLOAD_URL" in no_url.stderr

    def answer(request: Received) -> Reply:
        if request.json["session_id"] == "box-1_0002":
            return Reply(422, {"success": False, "message": "putting_distance_feet out of range"})
        return Reply(201, {"success": True, "session_id": "srv-9"})

    with ApiServer(answer) as server:
        upload = env | {"PUTT_UPLOAD_URL": server.url, "PUTT_UPLOAD_TOKEN": "t0ken"}
        flushed = queue("flush", env=upload)
    assert flushed.returncode == 0, flushed.stderr
    assert "1 delivered, 1 set aside" in flushed.stdout
    after = queue("list", env=env)
    assert "0 pending, 1 dead, 1 sent" in after.stdout
    assert "putting_distance_feet out of range" in after.stdout
    retried = queue("retry", "box-1_0002", env=env)
    assert retried.returncode == 0
    assert "1 pending, 0 dead, 1 sent" in queue("list", env=env).stdout
    with ApiServer([Reply(500, {"success": False, "message": "db down"})] * 50) as server:
        failing = queue("flush", env=env | {"PUTT_UPLOAD_URL": server.url, "PUTT_UPLOAD_TOKEN": "t0ken",
                                            "PUTT_UPLOAD_RETRY_MAX_DELAY": "1"})  # fmt: skip
    assert failing.returncode in (0, 1)
    purged = queue("retry-dead", env=env)
    assert purged.returncode == 0
    assert "t0ken" not in flushed.stdout + flushed.stderr + failing.stdout + failing.stderr


def test_the_queue_works_beside_a_service_holding_the_spool(tmp_path: Path, env: dict[str, str]) -> None:
    state = Path(env["PUTT_STATE_DIR"])
    held = Spool(SpoolConfig(state / "spool"))
    held.open(exclusive=True)  # as the running service holds it
    try:
        added = queue("add", str(report_pair(tmp_path / "reports", 3)), env=env)
        assert added.returncode == 0, added.stderr
        assert [entry.session_id for entry in held.pending()] == ["box-1_0003"]
        assert "1 pending" in queue("list", env=env).stdout
        missing = queue("show", "box-1_9999", env=env)
        assert missing.returncode == 66
        assert "no session box-1_9999 in the queue" in missing.stderr
    finally:
        held.close()


def test_purge_dead_deletes_only_the_dead(tmp_path: Path, env: dict[str, str]) -> None:
    state = Path(env["PUTT_STATE_DIR"])
    for number in (4, 5):
        assert queue("add", str(report_pair(tmp_path / "reports", number)), env=env).returncode == 0
    spool = Spool(SpoolConfig(state / "spool"))
    spool.open(exclusive=False)
    spool.mark_dead("box-1_0004", "HTTP 400: bad report")
    spool.close()
    purged = queue("purge-dead", env=env)
    assert "1 dead sessions deleted" in purged.stdout
    assert "1 pending, 0 dead" in queue("list", env=env).stdout
