"""Spool and uploader under chaos: a flaky web API and SIGKILLs of the uploading process. One table.

A driver process (`bench.chaos_driver`: journals, spool, uploader, wired as `run` wires them) produces
`--sessions` sessions and uploads them to a local API that fails `--failure-rate` of its requests, drawn
evenly from: a refused connection (the answer is dropped and the listening socket closed for a while), 500,
a hang past the read timeout, 429 with Retry-After, a connection closed half-way through the answer, and 200
with `{"success": false}`. A failed request is never stored: the API fails before it commits. The bench
SIGKILLs the driver `--kills` times at seeded random moments while it produces, restarting it each time,
until every session is produced; then the API recovers and the bench times how long the spool's pending/
takes to empty. The API counts the sessions it stored per `Idempotency-Key`.

Rows: produced; delivered (distinct ids the API stored); duplicates (stores beyond the first per id: a 201
lost to a kill before the spool recorded it is a legitimate re-send); lost (produced, but neither stored nor
in pending/ or dead/); corrupt (files in the spool that do not parse); dead-lettered; kills; drain time after
the recovery against 2 x the backoff cap. Targets: 500 / <= 1% / 0 / 0, drained within two backoff caps.

    .venv/bin/python -m bench.spool_chaos [--sessions 500] [--kills 30] [--seed 1] [--quick] [--work DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import itertools
import json
import queue
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

from daemon.closed_pipe import run_main

REPO = Path(__file__).resolve().parents[1]
MODES = ("refused", "500", "hang", "429", "cut", "success-false")
SPOOL_FOLDERS = ("pending", "dead", "sent")


@dataclass(frozen=True, slots=True)
class Options:
    """One run's settings."""

    sessions: int
    kills: int
    seed: int
    failure_rate: float
    retry_max_delay: float
    connect_timeout: float
    read_timeout: float
    pace: float  # mean seconds between putts in the driver
    kill_window: float  # a kill lands up to this long after its session count is reached
    outage: float  # seconds the listening socket stays closed after a refused request

    @property
    def hang(self) -> float:
        return self.read_timeout + 0.5


@dataclass(slots=True)
class Ledger:
    """What the API saw: stores per Idempotency-Key, injected failures, and the bodies' consistency."""

    stored: Counter[str] = field(default_factory=Counter)
    stored_at: dict[str, list[float]] = field(default_factory=dict)  # monotonic times of each store
    injected: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    key_mismatches: int = 0  # Idempotency-Key differs from the body's session_id
    bodies: dict[str, set[bytes]] = field(default_factory=dict)


class ChaosApi:
    """The upload API on 127.0.0.1, failing a share of its requests while `chaos` holds."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.ledger = Ledger()
        self.stopping = threading.Event()
        self._rng = random.Random(options.seed)
        self._lock = threading.Lock()
        self._chaos = True
        self._healed = threading.Event()
        self._outage_thread: threading.Thread | None = None
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._server: _Http | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen on the port."""
        server = _Http(("127.0.0.1", self.port), _Handler)
        server.api = self
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self._server = server

    def heal(self) -> None:
        """No more failures from now on; a closed socket opens at once."""
        with self._lock:
            self._chaos = False
        self._healed.set()
        if self._outage_thread is not None:
            self._outage_thread.join()

    def stop(self) -> None:
        self.stopping.set()
        self.heal()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def judge(self, key: str, body: bytes) -> tuple[str, int]:
        """The failure mode for this request ("ok" stores it) and the server id or Retry-After seconds."""
        with self._lock:
            ledger = self.ledger
            ledger.requests += 1
            with contextlib.suppress(ValueError, AttributeError):
                if json.loads(body).get("session_id") != key:
                    ledger.key_mismatches += 1
            ledger.bodies.setdefault(key, set()).add(body)
            mode = "ok"
            if self._chaos and self._rng.random() < self.options.failure_rate:
                mode = self._rng.choice(MODES)
            ledger.injected[mode] += 1
            if mode == "ok":
                ledger.stored[key] += 1
                ledger.stored_at.setdefault(key, []).append(time.monotonic())
                return mode, ledger.injected["ok"]
            if mode == "refused" and self._outage_thread is None:
                self._outage_thread = threading.Thread(target=self._outage, daemon=True)
                self._outage_thread.start()
            return mode, self._rng.randint(1, 3)

    def _outage(self) -> None:
        """Close the listening socket for `outage` seconds: connecting is refused meanwhile."""
        assert self._server is not None  # noqa: S101  # started before any request
        self._server.shutdown()
        self._server.server_close()
        self._healed.wait(self.options.outage)
        self.start()
        with self._lock:
            self._outage_thread = None


class _Http(ThreadingHTTPServer):
    daemon_threads = True  # server_close() must not wait for a hanging answer
    api: ChaosApi


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # http.server sends the headers and the body in two writes: with Nagle on, the body waits for the
    # client's delayed ACK (40 ms a request on Linux), a cost no real API has.
    disable_nagle_algorithm = True
    timeout = 10
    server: _Http

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  # the base class's name
        """Silent: the ledger is the record."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        api = self.server.api
        mode, number = api.judge(self.headers.get("Idempotency-Key", ""), body)
        if mode in ("refused", "hang"):
            if mode == "hang":
                api.stopping.wait(api.options.hang)
            self.close_connection = True  # no answer at all
            return
        if mode == "ok":
            message = {"success": True, "message": "Session uploaded", "session_id": f"srv-{number}"}
            self._send(201, message)
        elif mode == "500":
            self._send(500, {"success": False, "error": "Internal server error"})
        elif mode == "429":
            self._send(429, {"success": False, "error": "Too many requests"}, {"Retry-After": str(number)})
        elif mode == "success-false":
            self._send(200, {"success": False, "message": "Session could not be saved"})
        else:  # cut: half the answer, then the connection closes
            self._send(500, {"success": False, "error": "Internal server error"}, cut=True)

    def _send(
        self, status: int, body: object, headers: dict[str, str] | None = None, *, cut: bool = False
    ) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload[: len(payload) // 2] if cut else payload)
        self.wfile.flush()
        if cut:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)


class DriverError(RuntimeError):
    """The driver exited on its own or stopped talking."""


class DriverProcess:
    """One run of `bench.chaos_driver`: its stdout lines on a queue, its stderr appended to a log."""

    def __init__(self, command: list[str], log: IO[str]) -> None:
        self.process = subprocess.Popen(
            command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None  # noqa: S101  # opened as a pipe
        for line in self.process.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def next_line(self, timeout: float) -> str | None:
        """The next line (None at EOF); DriverError if none comes within TIMEOUT."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise DriverError(f"driver silent for {timeout:.0f} s") from None

    def kill(self) -> list[str]:
        """SIGKILL it; the lines it printed before dying."""
        self.process.kill()
        return self._finish()

    def terminate(self) -> int:
        """SIGTERM it and wait for its exit code."""
        self.process.terminate()
        code = self.process.wait(timeout=30)
        self._finish()
        return code

    def _finish(self) -> list[str]:
        self.process.wait(timeout=30)
        self._reader.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        rest = []
        while not self.lines.empty():
            line = self.lines.get()
            if line is not None:
                rest.append(line)
        return rest


@dataclass(frozen=True, slots=True)
class SpoolScan:
    """What the spool holds at the end."""

    pending: frozenset[str]
    dead: frozenset[str]
    sent: frozenset[str]
    corrupt: tuple[str, ...]
    temp_files: int


def _parses(path: Path) -> bool:
    data = path.read_bytes()
    try:
        if path.suffix == ".json":
            report = json.loads(data)
            total = report.get("total_putts") if isinstance(report, dict) else None
            return bool(report.get("session_id") == path.stem and isinstance(total, int))
        if path.suffix == ".meta":
            meta = json.loads(data)
            return isinstance(meta, dict) and {"queued_at", "filed_at", "attempts"} <= meta.keys()
        if path.suffix == ".csv":
            return len(list(csv.reader(io.StringIO(data.decode("utf-8"))))) > 1
        if path.suffix == ".reason":
            return bool(data.decode("utf-8").strip())
    except (ValueError, csv.Error):
        return False
    return False


def scan_spool(root: Path) -> SpoolScan:
    """Every entry per folder, and the files that do not parse as what their name says."""
    found: dict[str, frozenset[str]] = {}
    corrupt: list[str] = []
    temp = 0
    for folder in SPOOL_FOLDERS:
        paths = sorted((root / folder).iterdir())
        found[folder] = frozenset(p.stem for p in paths if p.suffix == ".json" and not p.name.startswith("."))
        for path in paths:
            if path.name.startswith("."):
                temp += 1
            elif not _parses(path):
                corrupt.append(f"{folder}/{path.name}")
    return SpoolScan(found["pending"], found["dead"], found["sent"], tuple(corrupt), temp)


def pending_count(root: Path) -> int:
    return sum(1 for path in (root / "pending").glob("*.json") if not path.name.startswith("."))


@dataclass(slots=True)
class Chaos:
    """One bench run: the API, the driver's restarts, what was produced."""

    options: Options
    work: Path
    api: ChaosApi
    produced: dict[int, str] = field(default_factory=dict)
    kills: int = 0
    kill_times: list[float] = field(default_factory=list)  # monotonic
    starts: int = 0
    backlog: int = 0  # pending when the API recovered
    current: DriverProcess | None = None

    def end_driver(self) -> None:
        """SIGKILL the driver if it still runs (an error left it behind)."""
        if self.current is not None and self.current.process.poll() is None:
            self.current.kill()

    def command(self) -> list[str]:
        opt = self.options
        first = max(self.produced, default=-1) + 1
        return [
            sys.executable, "-m", "bench.chaos_driver", "--spool", str(self.work / "spool"),
            "--journal", str(self.work / "journal"), "--url", self.api.url, "--first", str(first),
            "--sessions", str(opt.sessions), "--seed", str(opt.seed), "--pace", str(opt.pace),
            "--connect-timeout", str(opt.connect_timeout), "--read-timeout", str(opt.read_timeout),
            "--retry-max-delay", str(opt.retry_max_delay),
        ]  # fmt: skip

    def note(self, line: str) -> None:
        if line.startswith("produced "):
            _, number, sid = line.split()
            self.produced[int(number)] = sid

    def produce(self, log: IO[str]) -> DriverProcess:
        """Run the driver, killing it at the seeded moments, until it has produced every session."""
        rng = random.Random(self.options.seed + 1)
        count = min(self.options.kills, self.options.sessions - 1)
        thresholds = sorted(rng.sample(range(1, self.options.sessions), count))
        while True:
            command = self.command()
            print(f"--- bench: driver start {self.starts + 1}: {' '.join(command[3:])}", file=log, flush=True)
            driver = self.current = DriverProcess(command, log)
            self.starts += 1
            while True:
                line = driver.next_line(timeout=120.0)
                if line is None:
                    raise DriverError(f"driver exited with {driver.process.wait()} (see {log.name})")
                self.note(line)
                if line == "done":
                    return driver
                if self.kills < len(thresholds) and len(self.produced) >= thresholds[self.kills]:
                    time.sleep(rng.uniform(0.0, self.options.kill_window))
                    print(f"--- bench: SIGKILL {self.kills + 1} at {time.time():.3f}", file=log, flush=True)
                    for rest in driver.kill():
                        self.note(rest)
                    self.kills += 1
                    self.kill_times.append(time.monotonic())
                    break

    def drain(self, driver: DriverProcess, limit: float) -> float:
        """Heal the API; seconds until pending/ is empty (inf past LIMIT)."""
        self.backlog = pending_count(self.work / "spool")
        self.api.heal()
        start = time.monotonic()
        while pending_count(self.work / "spool") > 0:
            if driver.process.poll() is not None:
                raise DriverError(f"driver exited with {driver.process.returncode} while draining")
            if time.monotonic() - start > limit:
                return float("inf")
            time.sleep(0.02)
        return time.monotonic() - start


def table(chaos: Chaos, scan: SpoolScan, drain: float) -> list[str]:
    """The result rows."""
    opt, ledger = chaos.options, chaos.api.ledger
    ids = set(chaos.produced.values())
    delivered = {sid for sid in ids if ledger.stored[sid] > 0}
    duplicates = sum(count - 1 for count in ledger.stored.values() if count > 1)
    lost = ids - delivered - scan.pending - scan.dead
    cap = 2 * opt.retry_max_delay
    allowed = opt.sessions / 100
    rows = [
        ("produced", f"{len(ids)}", f"{opt.sessions}", len(ids) == opt.sessions),
        ("delivered (distinct)", f"{len(delivered)}", "", True),
        ("duplicates", f"{duplicates}", f"<= {allowed:g} (1%)", duplicates <= allowed),
        ("lost", f"{len(lost)}", "0", not lost),
        ("corrupt", f"{len(scan.corrupt)}", "0", not scan.corrupt),
        ("dead-lettered", f"{len(scan.dead)}", "", True),
        ("kills", f"{chaos.kills}", f"{opt.kills}", chaos.kills == min(opt.kills, opt.sessions - 1)),
        ("drain time after recovery, s", f"{drain:.1f}", f"<= {cap:.1f} (2 x cap)", drain <= cap),
    ]
    lines = [f"  {'':30} {'value':>8}   {'target':<18} verdict"]
    for label, value, target, met in rows:
        verdict = ("ok" if met else "MISSED") if target else ""
        lines.append(f"  {label:30} {value:>8}   {target:<18} {verdict}".rstrip())
    return lines


@dataclass(frozen=True, slots=True)
class Result:
    """What one run left: the spool as found, the drain time, the driver's last exit code."""

    scan: SpoolScan
    drain: float
    exit_code: int
    journals_left: int
    tidied: int  # lines of what the spool's open() repaired after the kills


def execute(chaos: Chaos) -> Result:
    """Produce under kills, recover the API, drain, stop the driver; DriverError if it misbehaves."""
    opt, work = chaos.options, chaos.work
    with (work / "driver.log").open("a") as log:
        driver = chaos.produce(log)
        print(f"--- bench: all produced; the API recovers at {time.time():.3f}", file=log, flush=True)
        drain = chaos.drain(driver, limit=max(60.0, 20 * opt.retry_max_delay))
        print(f"--- bench: pending/ empty at {time.time():.3f}", file=log, flush=True)
        code = driver.terminate()
    tidied = (work / "driver.log").read_text().count("bench.chaos_driver spool: ")
    return Result(scan_spool(work / "spool"), drain, code, len(list((work / "journal").iterdir())), tidied)


def report(chaos: Chaos, result: Result, seconds: float) -> None:
    """The table and the notes under it."""
    ledger, scan = chaos.api.ledger, result.scan
    print("\n".join(table(chaos, scan, result.drain)))
    injected = ", ".join(f"{mode} {ledger.injected[mode]}" for mode in MODES)
    print(
        f"requests {ledger.requests} ({injected}); {chaos.starts} driver starts, last exit code "
        f"{result.exit_code}; {result.tidied} repairs by the spool's open() after a kill; "
        f"{chaos.backlog} pending when the API recovered; {seconds:.0f} s in all"
    )
    mixed = sum(1 for bodies in ledger.bodies.values() if len(bodies) > 1)
    strangers = len(ledger.stored.keys() - set(chaos.produced.values()))
    stores = [times for times in ledger.stored_at.values() if len(times) > 1]
    explained = sum(
        1
        for times in stores
        for before, after in itertools.pairwise(times)
        if any(before < kill < after for kill in chaos.kill_times)
    )
    print(
        f"checks: duplicates with a SIGKILL between the two stores {explained} of "
        f"{sum(len(times) - 1 for times in stores)}; "
        f"stored ids never produced {strangers}; "
        f"Idempotency-Key != body session_id {ledger.key_mismatches}; sessions sent with differing "
        f"bodies {mixed}; spool temp files left {scan.temp_files}; journals left {result.journals_left}"
        + (f"; corrupt: {', '.join(scan.corrupt[:5])}" if scan.corrupt else "")
    )


def run(opt: Options, work_dir: Path | None) -> int:
    print(
        f"spool chaos: {opt.sessions} sessions, {opt.kills} SIGKILLs of the driver, seed {opt.seed}; "
        f"API fails {opt.failure_rate:.0%} of requests, evenly: {', '.join(MODES)}"
    )
    print(
        f"settings: retry_max_delay {opt.retry_max_delay:g} s, connect {opt.connect_timeout:g} s, "
        f"read {opt.read_timeout:g} s, hang {opt.hang:g} s, outage {opt.outage:g} s, Retry-After 1-3 s, "
        f"max_server_errors 8, keep_sent 200, mean {opt.pace:g} s between putts, 1-6 putts a session, "
        f"kills up to {opt.kill_window:g} s after a seeded session count"
    )
    with contextlib.ExitStack() as stack:
        if work_dir is None:
            work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="spool-chaos-")))
        work_dir.mkdir(parents=True, exist_ok=True)
        api = ChaosApi(opt)
        api.start()
        stack.callback(api.stop)
        chaos = Chaos(opt, work_dir, api)
        stack.callback(chaos.end_driver)
        started = time.monotonic()
        try:
            result = execute(chaos)
        except DriverError as err:
            print(f"error: {err}", file=sys.stderr)
            print((work_dir / "driver.log").read_text()[-3000:], file=sys.stderr)
            return 1
        report(chaos, result, time.monotonic() - started)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="40 sessions, 5 kills, faster putts")
    parser.add_argument("--work", type=Path, help="keep the spool and driver.log here (a new folder)")
    args = parser.parse_args()
    quick = args.quick
    opt = Options(
        sessions=40 if quick else args.sessions,
        kills=5 if quick else args.kills,
        seed=args.seed,
        failure_rate=0.3,
        retry_max_delay=5.0,
        connect_timeout=0.5,
        read_timeout=1.0,
        pace=0.03 if quick else 0.1,
        kill_window=1.0,
        outage=1.0,
    )
    return run(opt, args.work)


if __name__ == "__main__":
    raise SystemExit(run_main(main))
