"""`demo`, `process`, `check-config` and `status` run from a folder far from the checkout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.sim.clip import ClipSpec, write_clip
from daemon.sim.script import PuttRequest


def cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=600, check=False,
    )  # fmt: skip


@pytest.fixture
def elsewhere(tmp_path: Path, cli_env: dict[str, str]) -> tuple[Path, dict[str, str]]:
    folder = tmp_path / "somewhere" / "else"
    folder.mkdir(parents=True)
    # The state folder in the test's own space (root's default is /var/lib/putt-daemon).
    env = cli_env | {"PUTT_STATE_DIR": str(tmp_path / "state")}
    return folder, env


def test_demo_from_another_folder_says_where_its_report_is(elsewhere: tuple[Path, dict[str, str]]) -> None:
    folder, env = elsewhere
    out = folder.parent / "demo-out"
    result = cli("demo", "--putts", "3", "--out", str(out), cwd=folder, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 of 3 putts classified as simulated" in result.stdout
    (report,) = (out / "reports").glob("*.json")
    assert str(report) in result.stdout
    assert json.loads(report.read_text())["total_putts"] == 3
    assert "Traceback" not in result.stderr


def test_process_from_another_folder_uses_the_shipped_model(
    elsewhere: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, env = elsewhere
    clip = tmp_path / "clip"
    write_clip(ClipSpec(seed=5, requests=(PuttRequest("MAKE"), PuttRequest("CATCH")), default_rig=True), clip,
               progress=False)  # fmt: skip
    result = cli("process", str(clip / "clip.mp4"), "--calibration", str(clip / "calibration.json"),
                 "--start", "2026-03-01T10:00:00Z", cwd=folder, env=env)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 putts, 1 sessions" in result.stdout
    (report,) = (folder / "putt-reports").glob("*.json")
    assert f"reports in {folder / 'putt-reports'}" in result.stdout
    assert json.loads(report.read_text())["total_putts"] == 2


def test_check_config_opens_the_model_and_calibration(elsewhere: tuple[Path, dict[str, str]]) -> None:
    folder, env = elsewhere
    good = cli("check-config", cwd=folder, env=env)
    assert good.returncode == 0, good.stderr
    assert "# model:" in good.stdout
    assert "# calibration:" in good.stdout
    nowhere = {"PUTT_MODEL_PATH": "/nowhere/ball.onnx", "PUTT_CALIBRATION_FILE": "/nowhere/c.json"}
    missing = cli("check-config", cwd=folder, env=env | nowhere)
    assert missing.returncode == 78
    assert "PUTT_MODEL_PATH: /nowhere/ball.onnx: model file not found" in missing.stderr
    assert "PUTT_CALIBRATION_FILE: /nowhere/c.json: file not found" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_every_command_warns_about_a_mistyped_setting(elsewhere: tuple[Path, dict[str, str]]) -> None:
    folder, env = elsewhere
    for args in (("status",), ("simulate", "--help"), ("check-config",)):
        result = cli(*args, cwd=folder, env=env | {"PUTT_SESION_IDLE_TIMEOUT": "60"})
        if args[-1] == "--help":
            continue  # argparse answers --help before any command runs
        assert "PUTT_SESION_IDLE_TIMEOUT: not a setting, probably a typo" in result.stderr, args


def test_status_without_a_running_service_exits_3(elsewhere: tuple[Path, dict[str, str]]) -> None:
    folder, env = elsewhere
    result = cli("status", cwd=folder, env=env)
    assert result.returncode == 3
    assert "the service is not running" in result.stderr
