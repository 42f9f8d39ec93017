"""SIGKILL of the uploading process, 20 times, while sessions are produced and uploaded to a flaky API.

The process is `bench.chaos_driver` (journals, spool and uploader wired as `run` wires them), run as a real
process and killed at seeded random moments; the API is `ApiServer` with a handler that fails about a third
of the requests (500, 429 with Retry-After, a hang past the read timeout, a cut answer, `success: false`).
After a final restart with the failures off: every produced session was delivered or is still pending, no
file in the spool is corrupt, and a session sent again after a kill carries the Idempotency-Key and body
`session_id` of its first attempt.
"""

from __future__ import annotations

import csv
import io
import json
import queue
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.delivery.api_server import ApiServer, Received, Reply

KILLS = 20
READ_TIMEOUT = 0.5
ERROR = {"success": False, "error": "Internal server error"}


class FlakyApi:
    """The handler: a seeded third of the requests fail while `failing`; a 201 counts a store per key."""

    def __init__(self, seed: int) -> None:
        self.failing = True
        self.stored: Counter[str] = Counter()
        self._rng = random.Random(seed)

    def __call__(self, request: Received) -> Reply:
        # Called under the server's lock: build the 201 here rather than through server.success().
        if self.failing and self._rng.random() < 0.35:
            return self._rng.choice(
                (
                    Reply(500, ERROR),
                    Reply(429, {"success": False}, headers={"Retry-After": "1"}),
                    Reply(500, ERROR, delay=READ_TIMEOUT + 0.3),
                    Reply(500, ERROR, cut=True),
                    Reply(200, {"success": False, "message": "Session could not be saved"}),
                )
            )
        key = request.headers.get("idempotency-key", "")
        self.stored[key] += 1
        return Reply(201, {"success": True, "message": "Session uploaded", "session_id": f"srv-{key}"})


class Driver:
    """One run of the driver; its stdout lines on a queue."""

    def __init__(self, tmp_path: Path, url: str, first: int, last: int) -> None:
        command = [
            sys.executable, "-m", "bench.chaos_driver", "--spool", str(tmp_path / "spool"),
            "--journal", str(tmp_path / "journal"), "--url", url, "--first", str(first),
            "--sessions", str(last), "--pace", "0.01", "--connect-timeout", "0.5",
            "--read-timeout", str(READ_TIMEOUT), "--retry-max-delay", "1",
        ]  # fmt: skip
        log = (tmp_path / "driver.log").open("a")
        self.process = subprocess.Popen(
            command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True
        )
        log.close()
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def wait_for(self, wanted: str, seen: list[str], timeout: float = 20.0) -> None:
        """Collect lines into SEEN until WANTED arrives."""
        deadline = time.monotonic() + timeout
        while (line := self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))) != wanted:
            assert line is not None, f"driver exited with {self.process.wait()} before {wanted!r}"
            seen.append(line)

    def end(self, *, kill: bool, seen: list[str]) -> int:
        """SIGKILL or SIGTERM it; its remaining lines go to SEEN; its exit code."""
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        code = self.process.wait(timeout=20)
        self._reader.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        while not self.lines.empty():
            line = self.lines.get_nowait()
            if line is not None:
                seen.append(line)
        return code


def produced_ids(lines: list[str]) -> dict[int, str]:
    return {int(n): sid for _, n, sid in (line.split() for line in lines if line.startswith("produced "))}


def unparsable(root: Path) -> list[str]:
    """Files in the spool's folders that do not parse as what their suffix says."""
    bad = []
    for path in sorted(p for folder in ("pending", "dead", "sent") for p in (root / folder).iterdir()):
        try:
            if path.suffix == ".json":
                report = json.loads(path.read_bytes())
                ok = report["session_id"] == path.stem and isinstance(report["total_putts"], int)
            elif path.suffix == ".meta":
                ok = {"queued_at", "filed_at", "attempts"} <= json.loads(path.read_bytes()).keys()
            elif path.suffix in (".csv", ".reason"):
                ok = len(list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8"))))) > 0
            else:
                ok = False  # a temp file or a stranger: open() would have to tidy it
        except (ValueError, KeyError, TypeError, AttributeError):
            ok = False
        if not ok:
            bad.append(f"{path.parent.name}/{path.name}")
    return bad


def resent_after_a_kill(received: list[Received], kills: list[float]) -> dict[str, list[Received]]:
    """The requests of each session that was tried both before and after some kill."""
    by_key: dict[str, list[Received]] = {}
    for request in received:
        by_key.setdefault(request.headers.get("idempotency-key", ""), []).append(request)
    return {
        key: requests
        for key, requests in by_key.items()
        if any(requests[0].time < kill < requests[-1].time for kill in kills)
    }


@pytest.fixture
def start_driver(tmp_path: Path) -> Iterator[Callable[[str, int, int], Driver]]:
    """Start a driver on tmp_path's spool; any still running at the end is killed."""
    started: list[Driver] = []

    def start(url: str, first: int, last: int) -> Driver:
        started.append(Driver(tmp_path, url, first, last))
        return started[-1]

    yield start
    for driver in started:
        if driver.process.poll() is None:
            driver.end(kill=True, seen=[])


@pytest.mark.timeout(120)
def test_sessions_survive_sigkill_of_the_uploading_process(
    tmp_path: Path, start_driver: Callable[[str, int, int], Driver]
) -> None:
    rng = random.Random(7)
    api = FlakyApi(seed=7)
    lines: list[str] = []
    kills: list[float] = []
    with ApiServer(api) as server:
        for _ in range(KILLS):
            first = max(produced_ids(lines), default=-1) + 1
            driver = start_driver(server.url, first, 100_000)
            if rng.random() < 0.25:  # anywhere from start-up through recovery to production
                time.sleep(rng.uniform(0.2, 1.2))
            else:
                driver.wait_for("ready", lines)
                time.sleep(rng.uniform(0.0, 0.8))
            assert driver.end(kill=True, seen=lines) == -9
            kills.append(time.monotonic())
        api.failing = False
        last = max(produced_ids(lines), default=-1) + 1
        driver = start_driver(server.url, last, last)
        driver.wait_for("done", lines)
        deadline = time.monotonic() + 30
        while any((tmp_path / "spool" / "pending").glob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert driver.end(kill=False, seen=lines) == 0
        # A request whose sender was killed halfway through its body never reached the API as a request.
        received = [request for request in server.received if request.complete]

    produced = set(produced_ids(lines).values())
    pending = {path.stem for path in (tmp_path / "spool" / "pending").glob("*.json")}
    assert len(produced) >= KILLS
    assert produced - set(api.stored) - pending == set()
    assert unparsable(tmp_path / "spool") == []
    assert list((tmp_path / "journal").glob("*.journal")) == []

    resent = resent_after_a_kill(received, kills)
    assert resent, "no session was tried again after a kill"
    for key, requests in resent.items():
        original = requests[0]
        assert key in produced
        for again in requests[1:]:
            assert again.headers["idempotency-key"] == original.headers["idempotency-key"] == key
            assert again.json["session_id"] == original.json["session_id"] == key
