"""Shared fixtures: every test starts with no PUTT_* variables and no default env file in play."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.delivery.stats import STREAK_THRESHOLDS
from daemon.models import (
    LANES,
    PUTT_KINDS,
    QUADRANTS,
    Lane,
    Point,
    PuttEvent,
    Quadrant,
    ServiceState,
    SessionProgress,
)
from tools.shared_data import shared_folder

REPO = Path(__file__).resolve().parents[1]
REAL_FILES = sorted((shared_folder() / "proofofputt" / "calibration").glob("*.json"))


@pytest.fixture(autouse=True)
def _clean_putt_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("PUTT_"):
            monkeypatch.delenv(name)


@pytest.fixture
def cli_env() -> dict[str, str]:
    """An environment for running the CLI in a subprocess, without PUTT_* variables."""
    return {k: v for k, v in os.environ.items() if not k.upper().startswith("PUTT_")}


CONF = 0.6
IMGSZ = 320


def build_weights(path: Path, names: dict[int, str] | None = None, seed: int = 0) -> Path:
    """A tiny single-class YOLOv8 checkpoint at PATH whose random head gives plenty of distinct boxes."""
    import torch
    import ultralytics
    import yaml
    from ultralytics import YOLO

    spec = yaml.safe_load((Path(ultralytics.__file__).parent / "cfg/models/v8/yolov8.yaml").read_text())
    names = names or {0: "ball"}
    spec["nc"] = len(names)
    spec["scales"] = {"n": [0.33, 0.125, 1024]}
    spec_path = path.with_suffix(".yaml")
    spec_path.write_text(yaml.safe_dump(spec))
    torch.manual_seed(seed)
    model = YOLO(str(spec_path))
    model.model.names = names
    net = model.model
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):  # fresh statistics make every feature map vanish
            module.reset_running_stats()
            module.momentum = None
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(torch.rand(4, 3, IMGSZ, IMGSZ))
    net.eval()
    head = net.model[-1]
    with torch.no_grad():
        for seq in head.cv3:
            seq[-1].weight.normal_(0, 0.5)
            seq[-1].bias.fill_(-3.0)
        for seq in head.cv2:  # favour the first DFL bins: boxes of a few strides, not the whole frame
            seq[-1].weight.normal_(0, 0.05)
            seq[-1].bias.copy_(-torch.arange(float(head.reg_max)).repeat(4))
    model.save(str(path))
    return path


def export_onnx(weights: Path, target: Path, **kwargs: object) -> Path:
    """Export WEIGHTS with Ultralytics and move the result to TARGET."""
    from ultralytics import YOLO

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = YOLO(str(weights)).export(
            format="onnx", imgsz=IMGSZ, simplify=True, verbose=False, **({"dynamic": False} | kwargs)
        )
    Path(out).replace(target)
    return target


def brute_runs(makes: list[bool]) -> list[int]:
    """The lengths of the maximal runs of makes."""
    return [len(list(group)) for made, group in itertools.groupby(makes) if made]


def brute_fastest_21(times: list[float]) -> float | None:
    """The shortest interval between two makes with at least 20 makes after the first."""
    spans = [times[j] - times[i] for i in range(len(times)) for j in range(i + 20, len(times))]
    return min(spans, default=None)


def brute_longest(makes: list[bool]) -> int:
    return max(brute_runs(makes), default=0)


def brute_most_in_60(times: list[float]) -> int:
    """Max over makes t_i of the number of makes t with t_i <= t <= t_i + 60."""
    return max((sum(1 for t in times if start <= t <= start + 60.0) for start in times), default=0)


def brute_streaks(makes: list[bool]) -> dict[int, int]:
    """Threshold N -> number of maximal runs at least N long."""
    return {n: sum(1 for length in brute_runs(makes) if length >= n) for n in STREAK_THRESHOLDS}


def putt_event(detail: str, start_time: float, time: float, path: tuple[Point, ...] = ()) -> PuttEvent:
    """The typed putt a Proof of Putt detail string describes (test fixtures are written as those strings)."""
    head, _, rest = detail.partition(": ")
    kind = next(k for k in PUTT_KINDS if head.endswith(k.replace("_", " ")))
    words = [w for w in rest.split(" - ") if w]
    lanes: dict[str, Lane] = {lane: lane for lane in LANES}
    quadrants: dict[str, Quadrant] = {quadrant: quadrant for quadrant in QUADRANTS}
    if kind == "HOLE":
        return PuttEvent(kind, start_time, time, lanes[words[1]], None, quadrants[words[0]], path)
    if kind in ("CATCH", "RETURN"):
        return PuttEvent(kind, start_time, time, lanes[words[0]], lanes[words[1]], None, path)
    entry = lanes[words[0]] if words else "UNKNOWN"
    return PuttEvent(kind, start_time, time, entry, None, None, path)


class ServiceProcess:
    """`putt-daemon run` in a real process: stderr read by a thread, notify datagrams on a socket."""

    def __init__(self, tmp_path: Path, env: dict[str, str], *args: str, watchdog_usec: int = 0) -> None:
        self.notify_path = tmp_path / "notify.sock"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self.notify_path))
        self.datagrams: list[str] = []
        full_env = {**env, "NOTIFY_SOCKET": str(self.notify_path), "PYTHONUNBUFFERED": "1"}
        if watchdog_usec:
            full_env["WATCHDOG_USEC"] = str(watchdog_usec)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daemon", "run", *args],
            env=full_env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._closed = False
        self._cursor = 0
        self._receiver = threading.Thread(target=self._receive, daemon=True)
        self._receiver.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, pattern: str, timeout: float = 30.0, start: int = 0) -> int:
        """Index of the first stderr line from START matching the regex PATTERN."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            for number, line in enumerate(self.lines[start:], start):
                if regex.search(line):
                    return number
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r}; stderr:\n" + "\n".join(self.lines[-40:]))

    def _receive(self) -> None:
        # Read all the time, as systemd does: a full socket buffer would block the service's sd_notify.
        self.notify.settimeout(0.2)
        while not self._closed:
            try:
                self.datagrams.append(self.notify.recv(4096).decode())
            except TimeoutError:
                continue
            except OSError:
                return

    def wait_datagram(self, predicate: Callable[[str], bool], timeout: float = 30.0) -> str:
        """The next datagram (after those already returned) for which PREDICATE holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while self._cursor < len(self.datagrams):
                text = self.datagrams[self._cursor]
                self._cursor += 1
                if predicate(text):
                    return text
            time.sleep(0.02)
        tail = "\n".join(self.lines[-30:])
        raise AssertionError(f"no such datagram; got {self.datagrams[-10:]}; stderr:\n{tail}")

    def drain(self, seconds: float) -> list[str]:
        """Every datagram that arrives within SECONDS from now."""
        start = len(self.datagrams)
        time.sleep(seconds)
        self._cursor = len(self.datagrams)
        return self.datagrams[start : self._cursor]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Send SIG and wait for the exit code."""
        self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._closed = True
        self._receiver.join(timeout=2)
        self._reader.join(timeout=5)
        if self.process.stderr is not None:
            self.process.stderr.close()
        self.notify.close()


def make_state(**changes: object) -> ServiceState:
    """A running service's state in a session, with CHANGES applied."""
    now = time.time()
    base = ServiceState(
        status="in_session", camera="ok", fps=29.84, inference_ms=4.12, gate_skipped=0.62,
        session=SessionProgress("puttbox_1700000000000", putts=5, makes=3, streak=2), putts=12, sessions=1,
        model="ball.onnx", model_sha256="0123456789ab", calibration="rig.json", config_hash="ba9876543210",
        version="0.1.0", device="Putting mat", pid=os.getpid(), started_at=now - 7380, updated_at=now,
        uptime=7380.0,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]  # the test's keyword mapping


def wait_until(condition: Callable[[], object], timeout: float = 10.0) -> bool:
    """Poll CONDITION until it holds (True) or TIMEOUT seconds pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout:g} s")
        time.sleep(0.02)
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def service_state(state_dir: Path) -> dict[str, object]:
    """The running service's state file under STATE_DIR, {} before the first write."""
    try:
        data: dict[str, object] = json.loads((state_dir / "status.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return data
