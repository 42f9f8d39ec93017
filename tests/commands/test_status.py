"""`putt-daemon status` on state files written by the real `StateFile`."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daemon.commands.status import add_status_arguments, format_duration, status_command
from daemon.models import ServiceState
from daemon.outlets.statefile import StateFile
from tests.conftest import make_state as shared_state


def make_state(**changes: object) -> ServiceState:
    return shared_state(**({} | changes))


def write_state(path: Path, **changes: object) -> ServiceState:
    state = make_state(**changes)
    sink = StateFile(path, interval=2.0)
    sink.start()
    sink.state(state)
    sink.close()
    return state


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_status_arguments(parser)
    return parser.parse_args(argv)


def rows(text: str) -> dict[str, str]:
    """`label  value` lines by label; continuation lines (blank label) are left out."""
    found = {}
    for line in text.splitlines():
        if not line.startswith(" "):
            label, _, value = line.partition("  ")
            found[label] = value.strip()
    return found


def test_status_of_a_running_service(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "state.json"
    write_state(path, problems=("camera lost for 30 s", "disk nearly full"))
    assert status_command(parse(), path) == 0
    out, err = capsys.readouterr()
    assert err == ""
    shown = rows(out)
    assert shown["status"] == "in session"
    assert shown["camera"] == "ok"
    assert shown["fps"] == "29.8"
    assert shown["inference"] == "4.1 ms"
    assert shown["motion gate"] == "62% of frames skipped"
    assert shown["session"] == "puttbox_1700000000000: 5 putts, 3 makes, streak 2"
    assert shown["since start"] == "12 putts, 1 sessions"
    assert shown["model"] == "ball.onnx (sha256 0123456789ab)"
    assert shown["calibration"] == "rig.json"
    assert shown["config hash"] == "ba9876543210"
    assert shown["uploads"] == "0 waiting, 0 set aside; uploader disabled"
    assert shown["last upload"] == "none yet"
    assert "drift" not in shown  # nothing to say: no row
    assert "model fetch" not in shown
    assert shown["version"] == "0.1.0"
    assert shown["uptime"] == "2 h 03 min"
    assert shown["updated"] in {"0 s ago", "1 s ago", "2 s ago"}
    assert shown["problems"] == "camera lost for 30 s"
    lines = out.splitlines()
    assert lines[-1].strip() == "disk nearly full"
    assert all(line[11:13] == "  " and line[13] != " " for line in lines)  # values in one column


def test_status_counts_the_camera_outages_since_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for outages, shown_as in ((1, "ok (lost 1 time since start)"), (3, "lost (lost 3 times since start)")):
        path = tmp_path / f"state{outages}.json"
        write_state(path, camera="ok" if outages == 1 else "lost", camera_outages=outages)
        assert status_command(parse(), path) == 0
        assert rows(capsys.readouterr().out)["camera"] == shown_as


def test_status_shows_the_queue_the_last_upload_drift_and_a_model_fetch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "state.json"
    write_state(
        path, spool_pending=3, spool_dead=1, upload="auth_failed", last_upload_at=time.time() - 125,
        last_upload_result="refused: 401 Unauthorized", calibration_drift="followed",
        calibration_drift_detail="shift 12.0, -3.5 px", model_update="rejected",
        model_update_error="sha256 mismatch",
    )  # fmt: skip
    assert status_command(parse(), path) == 0
    shown = rows(capsys.readouterr().out)
    assert shown["uploads"] == "3 waiting, 1 set aside; uploader auth failed"
    assert shown["last upload"] in {
        "2 min 05 s ago: refused: 401 Unauthorized",
        "2 min 06 s ago: refused: 401 Unauthorized",
    }
    assert shown["drift"] == "followed (shift 12.0, -3.5 px)"
    assert shown["model fetch"] == "rejected: sha256 mismatch"


def test_status_when_idle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "state.json"
    write_state(path, status="idle", camera="lost", session=None)
    assert status_command(parse(), path) == 0
    shown = rows(capsys.readouterr().out)
    assert shown["status"] == "idle"
    assert shown["camera"] == "lost"
    assert shown["session"] == "none open"
    assert "problems" not in shown


def test_status_json_prints_the_state_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "state.json"
    write_state(path)
    assert status_command(parse("--json"), path) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(path.read_text())


def test_status_without_a_state_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "state.json"
    assert status_command(parse(), path) == 3
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"putt-daemon status: no state file at {path}: the service is not running\n"


def test_status_of_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "state.json"
    write_state(path, updated_at=time.time() - 47.2)
    assert status_command(parse(), path) == 3
    out, err = capsys.readouterr()
    assert err == "putt-daemon status: state file is 47 s old: the service is not running or hung\n"
    assert rows(out)["updated"] == "47 s ago"  # the last known state is still shown


def test_status_when_the_process_is_gone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    path = tmp_path / "state.json"
    write_state(path, pid=child.pid)
    assert status_command(parse("--json"), path) == 3
    out, err = capsys.readouterr()
    assert json.loads(out)["pid"] == child.pid
    assert err == f"putt-daemon status: process {child.pid} is not running\n"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (42.9, "42 s"),
        (307, "5 min 07 s"),
        (7380, "2 h 03 min"),
        (273600, "3 d 04 h"),
        (-5, "0 s"),
    ],
)
def test_durations_read_like_a_clock(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
