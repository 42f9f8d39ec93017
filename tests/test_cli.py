"""The command line: every subcommand answers --help, install.sh is idempotent."""

from __future__ import annotations

import subprocess
import sys

import pytest

from daemon.cli import build_parser
from tests.conftest import REPO

COMMANDS = [
    "run",
    "demo",
    "simulate",
    "process",
    "record",
    "export",
    "check-config",
    "calibrate",
    "snapshot",
    "queue",
    "status",
]


def test_parser_knows_every_command() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    assert sorted(subparsers.choices) == sorted(COMMANDS)  # type: ignore[arg-type]  # choices is a dict here


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, cli_env: dict[str, str]) -> None:
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "putt-daemon"), command, "--help"],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"usage: putt-daemon {command}" in result.stdout
    assert "--env-file" in result.stdout


def test_python_dash_m_daemon_prints_version(cli_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "daemon", "--version"],
        capture_output=True,
        text=True,
        env=cli_env,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("putt-daemon ")


def test_no_command_is_a_usage_error(cli_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "daemon"], capture_output=True, text=True, env=cli_env, check=False
    )
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_install_dev_second_run_changes_nothing(cli_env: dict[str, str]) -> None:
    stamp = REPO / ".venv" / ".putt-daemon-installed"
    before = stamp.stat().st_mtime_ns
    result = subprocess.run(
        ["bash", str(REPO / "install.sh"), "--dev"],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "apt packages already installed" in result.stdout
    assert ".venv exists" in result.stdout
    assert "package already installed" in result.stdout
    assert stamp.stat().st_mtime_ns == before


def test_install_rejects_unknown_flags(cli_env: dict[str, str]) -> None:
    result = subprocess.run(
        ["bash", str(REPO / "install.sh"), "--bogus"],
        capture_output=True,
        text=True,
        env=cli_env,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown argument: --bogus" in result.stderr
