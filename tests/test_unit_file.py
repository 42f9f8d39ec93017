"""systemd/putt-daemon.service: its directives, systemd's own checks, and its ExecStart run as the unit says.

No systemd runs as PID 1 here, so `systemd-run --user` cannot start the unit; the last tests start the
ExecStart line the way systemd would (notify socket, WATCHDOG_USEC from WatchdogSec, STATE_DIRECTORY, the
ExecReload line for reload, SIGTERM for stop) with the kernel's form of MemoryDenyWriteExecute applied.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, wait_until

UNIT = REPO / "systemd" / "putt-daemon.service"
MAX_EXPOSURE = 1.5
# Starts argv[1:] with no memory both writable and executable, as MemoryDenyWriteExecute=yes does: the
# kernel's PR_SET_MDWE (65) with PR_MDWE_REFUSE_EXEC_GAIN (1), kept across exec, same process id.
DENY_WRITE_EXECUTE = (
    "import ctypes, os, sys\n"
    "if ctypes.CDLL(None, use_errno=True).prctl(65, 1, 0, 0, 0) != 0:\n"
    "    raise OSError(ctypes.get_errno(), 'PR_SET_MDWE')\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


def directives() -> dict[str, dict[str, list[str]]]:
    """Section -> key -> every value given (systemd keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def test_service_directives() -> None:
    service = directives()["Service"]
    single = {key: values[-1] for key, values in service.items()}

    assert single["Type"] == "notify"
    assert float(single["WatchdogSec"]) > 0
    assert single["Restart"] == "on-failure"
    assert single["RestartPreventExitStatus"] == "78"
    assert single["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert single["StateDirectory"] == "putt-daemon"
    assert single["ConfigurationDirectory"] == "putt-daemon"
    assert single["User"] == "putt-daemon"
    assert "video" in single["SupplementaryGroups"].split()
    assert single["DevicePolicy"] == "closed"
    assert service["DeviceAllow"] == ["char-video4linux rw"]
    assert single["MemoryDenyWriteExecute"] == "yes"
    assert single["ExecStart"] == "/opt/putt-daemon/venv/bin/putt-daemon run"
    assert "EnvironmentFile" not in service
    assert "PrivateUsers" not in service
    assert directives()["Install"] == {"WantedBy": ["multi-user.target"]}


def test_exposure_is_at_most_one_and_a_half() -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(UNIT)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    found = re.search(r"Overall exposure level for putt-daemon\.service: (\d+\.\d+)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    # verify also checks ExecStart exists: point it at this checkout's program.
    unit = tmp_path / "putt-daemon.service"
    program = Path(sys.executable).parent / "putt-daemon"
    unit.write_text(UNIT.read_text().replace("/opt/putt-daemon/venv/bin/putt-daemon", str(program)))

    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )

    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def exec_start_argv() -> list[str]:
    """The unit's ExecStart, its program taken from this checkout's venv, under MemoryDenyWriteExecute."""
    argv = shlex.split(directives()["Service"]["ExecStart"][-1])
    program = str(Path(sys.executable).parent / Path(argv[0]).name)
    return [sys.executable, "-c", DENY_WRITE_EXECUTE, program, *argv[1:]]


def unit_environment(tmp_path: Path, notify: Path) -> dict[str, str]:
    """What systemd hands the service: a clean environment plus the unit's own variables."""
    watchdog = float(directives()["Service"]["WatchdogSec"][-1])
    state = tmp_path / "state"
    state.mkdir()
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "NOTIFY_SOCKET": str(notify),
        "WATCHDOG_USEC": str(int(watchdog * 1_000_000)),
        "STATE_DIRECTORY": str(state),
        "PUTT_CAMERA_SOURCE": "sim://?seed=3&putts=40&realtime=1",
    }


class NotifySocket:
    """The manager's end of NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.seen: list[str] = []

    def saw(self, field: str) -> bool:
        with contextlib.suppress(TimeoutError):
            self.seen.append(self.sock.recv(4096).decode())
        return any(field in message.splitlines() for message in self.seen)

    def close(self) -> None:
        self.sock.close()

    def wait(self, field: str, timeout: float = 60.0) -> None:
        assert wait_until(lambda: self.saw(field), timeout=timeout), (field, self.seen)
        self.seen.clear()


def test_exec_start_notifies_reloads_and_stops_as_the_unit_expects(tmp_path: Path) -> None:
    notify = NotifySocket(tmp_path / "notify.sock")
    log = tmp_path / "stderr.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            exec_start_argv(), env=unit_environment(tmp_path, notify.path), cwd=tmp_path,
            stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    try:
        notify.wait("READY=1")
        notify.wait("WATCHDOG=1")
        reload_line = directives()["Service"]["ExecReload"][-1].replace("$MAINPID", str(process.pid))
        subprocess.run(shlex.split(reload_line), check=True)
        notify.wait("RELOADING=1")
        notify.wait("READY=1")
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        notify.wait("STOPPING=1", timeout=10)
    finally:
        notify.close()
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, log.read_text()


def test_bad_settings_exit_with_the_status_the_unit_does_not_restart(tmp_path: Path) -> None:
    env = unit_environment(tmp_path, tmp_path / "notify.sock") | {"PUTT_CAMERA_FPS": "0"}
    prevent = directives()["Service"]["RestartPreventExitStatus"][-1]

    result = subprocess.run(
        exec_start_argv(), env=env, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip

    assert str(result.returncode) == prevent
    assert "PUTT_CAMERA_FPS" in result.stderr
