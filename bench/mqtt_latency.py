"""MQTT cost: how fast a putt reaches a subscriber, and the CPU the MQTT outlet adds to the service.

One table, through a real mosquitto started here on a free port:

1. The delay from a putt's classification (the time on the service's `putt ... in session` log line, taken
   just before the putt is handed to the outlets) to its `<prefix>/putt` event arriving at a subscriber in
   this process; median and p95, over every putt of the MQTT-on runs of 2 (live, 30 fps) and over a
   `demo --putts N` clip replayed at the machine's full speed, the vision loop busy all the time.
   Target: p95 <= 100 ms.
2. CPU seconds per hour of a real `putt-daemon run` process on a busy 30 fps `sim://` source, with MQTT on
   and off, alternating, `--runs` starts each, over a `--window` second window from shortly after start-up;
   medians. The difference is the extra CPU MQTT costs the service. The simulator renders its frames inside
   that process, so the difference carries the noise of the whole process.
3. The same cost measured alone: an outlet in this process fed what the service feeds it (a state every
   2 s, a putt every 10 s) against this process idling for as long, one after the other.

    .venv/bin/python -m bench.mqtt_latency [--runs 3] [--window 30] [--demo-putts 20] [--quick]
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from daemon.closed_pipe import run_main
from daemon.models import PuttEvent, ServiceState, SessionProgress
from daemon.outlets.mqtt import MqttConfig, MqttOutlet

DEVICE = "bench"
PREFIX = f"puttbox/{DEVICE}"
BUSY_URL = "sim://?seed=0&putts=500&realtime=1"  # putts one after another for longer than any window
STARTUP = 3.0  # seconds after `service ready` before the CPU window opens
READY_TIMEOUT = 90.0
STATE_EVERY = 2.0  # what the service hands its outlets: PUTT_STATE_STATUS_INTERVAL's default
PUTT_EVERY = 10.0
TARGET_P95_MS = 100.0
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
_PUTT_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO +daemon\.service\.core: putt (.+) in session"
)
_CLOCK_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much work each measure does."""

    runs: int
    window: float
    alone: float  # seconds of the outlet-alone measure, and again of its idle baseline
    demo_putts: int


@dataclass(frozen=True, slots=True)
class RunResult:
    """One start of the service."""

    cpu_per_hour: float
    delays_ms: tuple[float, ...]  # one per putt that reached the subscriber (MQTT on)


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table."""

    label: str
    value: str
    target: str = "-"
    result: str = "-"


class Broker:
    """mosquitto on a free port of 127.0.0.1, configured from a file in FOLDER."""

    def __init__(self, folder: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        config = folder / "mosquitto.conf"
        config.write_text(
            f"user {getpass.getuser()}\nlistener {self.port} 127.0.0.1\n"
            "persistence false\nallow_anonymous true\n"
        )
        self._log = (folder / "mosquitto.log").open("ab")
        self._process = subprocess.Popen([MOSQUITTO, "-c", str(config)], stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise RuntimeError("mosquitto did not start") from None
                time.sleep(0.05)
                continue
            return

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)
        self._log.close()


class PuttListener:
    """A subscriber to `<prefix>/putt` that notes when each event arrived (wall clock)."""

    def __init__(self, port: int) -> None:
        self.arrivals: list[float] = []
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self._client.on_message = lambda _c, _u, _m: self.arrivals.append(time.time())
        subscribed = threading.Event()
        self._client.on_subscribe = lambda *_: subscribed.set()
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        self._client.subscribe(f"{PREFIX}/putt", qos=1)
        if not subscribed.wait(10):
            raise RuntimeError("subscriber not subscribed")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def classified_at(lines: list[str]) -> list[float]:
    """The wall-clock times of the `putt ... in session` log lines among LINES."""
    return [
        datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()  # local time, as logging writes it
        for match in map(_PUTT_LINE.match, lines)
        if match
    ]


def delays_ms(classified: list[float], arrivals: list[float]) -> tuple[float, ...]:
    """Each putt's delay, pairing the N-th classified with the N-th arrived (both in order)."""
    # Putts classified in the last moment before SIGTERM may still be on their way: pair from the start.
    return tuple((arrived - at) * 1000 for at, arrived in zip(classified, arrivals, strict=False))


def service_env(folder: Path, broker_port: int | None) -> dict[str, str]:
    """The environment of a service in FOLDER, without the caller's PUTT_* variables; MQTT on with a port."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("PUTT_")}
    env |= {"PUTT_STATE_DIR": str(folder), "PUTT_DEVICE_ID": DEVICE}
    if broker_port is not None:
        env |= {"PUTT_MQTT_HOST": "127.0.0.1", "PUTT_MQTT_PORT": str(broker_port)}
    return env


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of every thread of PID so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICK


def run_service(folder: Path, broker_port: int | None, window: float) -> tuple[float, list[float]]:
    """Start `putt-daemon run` on the busy source (MQTT on when BROKER_PORT is given), measure its CPU over
    WINDOW seconds, stop it; returns CPU seconds per hour and the classification times of its putts."""
    folder.mkdir()
    env = service_env(folder, broker_port) | {"PUTT_CAMERA_SOURCE": BUSY_URL}
    process = subprocess.Popen(
        [sys.executable, "-m", "daemon", "run", "--no-watch"],
        env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stderr is not None  # noqa: S101  # opened as a pipe above
        for line in process.stderr:
            lines.append(line)
            if "service ready" in line:
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not ready.wait(READY_TIMEOUT):
            raise RuntimeError("service not ready:\n" + "".join(lines[-20:]))
        time.sleep(STARTUP)
        cpu0, t0 = cpu_seconds(process.pid), time.monotonic()
        time.sleep(window)
        cpu1, t1 = cpu_seconds(process.pid), time.monotonic()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        reader.join(timeout=5)
    return (cpu1 - cpu0) / (t1 - t0) * 3600, classified_at(lines)


def service_runs(folder: Path, broker: Broker, sizes: Sizes) -> tuple[list[RunResult], list[RunResult]]:
    """MQTT on and off, alternating, RUNS starts each."""
    on: list[RunResult] = []
    off: list[RunResult] = []
    for number in range(sizes.runs):
        listener = PuttListener(broker.port)
        try:
            cpu, classified = run_service(folder / f"on{number}", broker.port, sizes.window)
            time.sleep(0.5)  # the last event's way to the subscriber
        finally:
            listener.close()
        on.append(RunResult(cpu, delays_ms(classified, listener.arrivals)))
        cpu, _ = run_service(folder / f"off{number}", None, sizes.window)
        off.append(RunResult(cpu, ()))
    return on, off


def demo_delays(folder: Path, broker: Broker, putts: int) -> tuple[float, ...]:
    """Each putt's delay in `demo --putts PUTTS`: a clip rendered, then replayed at full speed, MQTT on."""
    folder.mkdir()
    listener = PuttListener(broker.port)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "daemon", "demo", "--log-level", "INFO", "--putts", str(putts),
             "--out", str(folder / "demo")],
            env=service_env(folder, broker.port), cwd=folder, capture_output=True, text=True, timeout=900,
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError("demo failed:\n" + result.stderr[-2000:])
        time.sleep(0.5)  # the last event's way to the subscriber
    finally:
        listener.close()
    return delays_ms(classified_at(result.stderr.splitlines()), listener.arrivals)


def outlet_alone(broker: Broker, seconds: float) -> tuple[float, float]:
    """CPU seconds per hour of this process with an outlet fed as the service feeds it, and idling."""
    state = ServiceState(
        status="in_session", camera="ok", fps=30.0, inference_ms=4.0, gate_skipped=0.6,
        session=SessionProgress(f"{DEVICE}_1", putts=1, makes=1, streak=1), putts=1, sessions=0,
        model="ball.onnx", model_sha256="0" * 12, calibration="rig.json", config_hash="0" * 12,
        version="bench", device="Bench", pid=os.getpid(), started_at=time.time(), updated_at=time.time(),
        uptime=0.0,
    )  # fmt: skip
    putt = PuttEvent("HOLE", 0.0, 1.5, "CENTER", None, "TOP", ())
    outlet = MqttOutlet(MqttConfig(host="127.0.0.1", port=broker.port, device_id=DEVICE), version="bench")
    outlet.start()
    deadline = time.monotonic() + 10
    while not outlet.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        cpu0, t0 = time.process_time(), time.monotonic()
        next_putt = t0 + PUTT_EVERY
        while (now := time.monotonic()) < t0 + seconds:
            outlet.state(replace(state, fps=30.0 + now % 1, updated_at=time.time(), uptime=now - t0))
            if now >= next_putt:
                outlet.putt(putt, f"{DEVICE}_1")
                next_putt += PUTT_EVERY
            time.sleep(STATE_EVERY)
        busy = (time.process_time() - cpu0) / (time.monotonic() - t0) * 3600
    finally:
        outlet.close()
    cpu0, t0 = time.process_time(), time.monotonic()
    while time.monotonic() < t0 + seconds:
        time.sleep(STATE_EVERY)
    idle = (time.process_time() - cpu0) / (time.monotonic() - t0) * 3600
    return busy, idle


def percentile(values: list[float], share: float) -> float:
    """The SHARE quantile of VALUES (inclusive method; the one value when there is one)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def latency_rows(name: str, delays: list[float]) -> list[Row]:
    """The count, median and p95 rows of one set of delays."""
    label = f"putt classified -> subscriber, {name}"
    if not delays:
        return [Row(f"putts timed, {name}", "0"), Row(f"{label}, median, ms", "none"),
                Row(f"{label}, p95, ms", "none", f"<= {TARGET_P95_MS:g}", "FAIL")]  # fmt: skip
    p95 = percentile(delays, 0.95)
    return [
        Row(f"putts timed, {name}", f"{len(delays)}"),
        Row(f"{label}, median, ms", f"{statistics.median(delays):.1f}"),
        Row(
            f"{label}, p95, ms",
            f"{p95:.1f}",
            f"<= {TARGET_P95_MS:g}",
            "PASS" if p95 <= TARGET_P95_MS else "FAIL",
        ),
    ]


def table(
    on: list[RunResult], off: list[RunResult], demo: tuple[float, ...], alone: tuple[float, float]
) -> list[Row]:
    """The rows, from the measures."""
    cpu_on = statistics.median(run.cpu_per_hour for run in on)
    cpu_off = statistics.median(run.cpu_per_hour for run in off)
    return [
        *latency_rows("live", [d for run in on for d in run.delays_ms]),
        *latency_rows("replay", list(demo)),
        Row("service CPU s per hour, MQTT off (baseline)", f"{cpu_off:.0f}"),
        Row("service CPU s per hour, MQTT on", f"{cpu_on:.0f}"),
        Row("extra CPU s per hour for MQTT, service", f"{cpu_on - cpu_off:+.1f}"),
        Row("CPU s per hour, outlet alone, idle process", f"{alone[1]:.2f}"),
        Row("CPU s per hour, outlet alone, outlet fed", f"{alone[0]:.2f}"),
        Row("extra CPU s per hour for MQTT, outlet alone", f"{alone[0] - alone[1]:+.2f}"),
    ]


def main() -> int:
    """Run every measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="service starts with MQTT on, and off (3)")
    parser.add_argument("--window", type=float, default=30.0, help="seconds of each CPU window (30)")
    parser.add_argument("--demo-putts", type=int, default=20, help="putts in the replayed clip (20)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check that every row works")
    args = parser.parse_args()
    sizes = Sizes(1, 15.0, 2.0, 2) if args.quick else Sizes(args.runs, args.window, 30.0, args.demo_putts)
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as folder:
        broker = Broker(Path(folder))
        try:
            on, off = service_runs(Path(folder), broker, sizes)
            demo = demo_delays(Path(folder) / "demo", broker, sizes.demo_putts)
            alone = outlet_alone(broker, sizes.alone)
        finally:
            broker.close()
    print(f"MQTT cost: {sizes.runs} start(s) each of `putt-daemon run` on {BUSY_URL}, MQTT on / off")
    print(f"(live), `demo --putts {sizes.demo_putts}` replayed at full speed with MQTT on (replay),")
    print(
        f"{sizes.window:g} s CPU windows, medians; the outlet alone over {sizes.alone:g} s; local mosquitto"
    )
    print(f"{'#':>2}  {'measure':<50} {'value':>8} {'target':>8} {'result':>6}")
    for number, row in enumerate(table(on, off, demo, alone), 1):
        print(f"{number:>2}  {row.label:<50} {row.value:>8} {row.target:>8} {row.result:>6}")
    print("per run, CPU s per hour on / off: " + ", ".join(
        f"{a.cpu_per_hour:.0f} / {b.cpu_per_hour:.0f}" for a, b in zip(on, off, strict=True)
    ))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
