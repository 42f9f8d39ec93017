"""The uploader against a real HTTP server on 127.0.0.1 and a real spool: every session arrives, oldest first.

The network is always real (refused connections, read timeouts, cut responses, TLS). Only the backoff waits of
`drain` run on a fake clock, so a test never sleeps through a backoff it does not need.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from daemon import __version__
from daemon.delivery.reports import ReportContext, build_report
from daemon.delivery.spool import Spool, SpoolConfig
from daemon.delivery.uploader import (
    AuthFailed,
    Delivered,
    Retry,
    Skipped,
    UploadConfig,
    Uploader,
    UploadQueue,
    backoff,
    retry_after,
)
from daemon.errors import SpoolError, UploadError
from daemon.models import Session
from tests.conftest import free_port, putt_event, wait_until
from tests.delivery.api_server import ApiServer, Received, Reply

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJwbGF5ZXJJZCI6NDJ9.c2VjcmV0LXNpZ25hdHVyZS1kby1ub3QtbG9n"  # noqa: S105  # fake
NEW_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJwbGF5ZXJJZCI6NDN9.bmV3LXNpZ25hdHVyZS1hbHNvLXNlY3JldA"  # noqa: S105  # fake
CONTEXT = ReportContext("Jane Doe", "jane@example.com", "0.1.0", "abc123def456", "cal789")
EPOCH = 1_700_000_000.0
COUNTS = ("total_putts", "total_makes", "total_misses", "best_streak", "most_makes_in_60_seconds")
MEASURES = ("make_percentage", "session_duration_seconds", "putts_per_minute", "makes_per_minute")


class Ticks:
    """The spool's clock: one second later at every call, so queue order is the order of accept."""

    def __init__(self) -> None:
        self.now = EPOCH

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


class FakeTime:
    """The uploader's clock and sleep for `drain`: sleeping only moves the clock."""

    def __init__(self) -> None:
        self.now = EPOCH
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class RecordingSession(requests.Session):
    """A real session that also keeps the keyword arguments of every request."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        self.calls.append(kwargs)
        return super().request(method, url, *args, **kwargs)


def finished_session(number: int) -> Session:
    details = ["MAKE - HOLE: TOP - CENTER", "MISS - CATCH: LEFT - RIGHT", "MAKE - HOLE: LOW - LEFT"]
    base = 10.0 * number
    putts = tuple(putt_event(d, base + 3 * i, base + 3 * i + 1.5) for i, d in enumerate(details))
    return Session(f"box-1_{number:04d}", "box-1", putts[0].start_time, putts[-1].time, EPOCH, putts, "idle")


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    queue = Spool(SpoolConfig(tmp_path / "spool"), clock=Ticks())
    queue.open()
    yield queue
    queue.close()


def enqueue(spool: Spool, count: int, first: int = 1) -> list[str]:
    """Queue COUNT sessions; their ids, oldest first."""
    ids = []
    for number in range(first, first + count):
        done = finished_session(number)
        spool.accept(done, build_report(done, CONTEXT))
        ids.append(done.session_id)
    return ids


def config(url: str, **changes: Any) -> UploadConfig:
    fields: dict[str, Any] = {
        "url": url, "token": SecretStr(TOKEN), "player_name": "Pat Putter", "player_email": "pat@example.com",
        "connect_timeout": 2.0, "read_timeout": 2.0, "retry_max_delay": 10.0,
    }  # fmt: skip
    return UploadConfig(**{**fields, **changes})


def uploader(url: str, queue: UploadQueue, fake: FakeTime | None = None, **changes: Any) -> Uploader:
    fake = fake or FakeTime()
    return Uploader(config(url, **changes), queue, clock=fake.clock, sleep=fake.sleep)


def sent_ids(spool: Spool) -> list[str]:
    return [entry.session_id for entry in spool.entries("sent")]


def assert_same_body_per_session(received: list[Received]) -> None:
    """Every request of a session carries its id as Idempotency-Key and the same bytes."""
    bodies: dict[str, bytes] = {}
    for request in received:
        key = request.headers["idempotency-key"]
        assert request.json["session_id"] == key
        assert bodies.setdefault(key, request.body) == request.body


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


# -- request shapes -----------------------------------------------------------------------------------


def test_sessions_upload_sends_the_flat_report_with_numbers_and_csv(spool: Spool) -> None:
    ids = enqueue(spool, 2)
    with ApiServer() as server:
        summary = uploader(server.url, spool).drain()
    assert (summary.delivered, summary.remaining, summary.dead) == (2, 0, 0)
    first = server.received[0]
    assert (first.method, first.path) == ("POST", "/api/sessions/upload")
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    assert first.headers["content-type"] == "application/json"
    assert first.headers["idempotency-key"] == ids[0]
    assert first.headers["user-agent"] == f"putt-daemon/{__version__}"
    body = first.json
    assert all(type(body[name]) is int for name in COUNTS)
    assert all(type(body[name]) in (int, float) for name in MEASURES)
    assert (body["total_putts"], body["total_makes"], body["total_misses"]) == (3, 2, 1)
    assert (body["player_name"], body["player_email"]) == ("Pat Putter", "pat@example.com")
    assert body["session_info"]["player_name"] == "Pat Putter"
    csv_path = spool.entries("sent")[0].csv_path
    assert csv_path is not None
    assert body["csv_data"] == csv_path.read_bytes().decode()
    assert [(e.session_id, e.last_error) for e in spool.entries("sent")] == [
        (ids[0], "srv-1"),
        (ids[1], "srv-2"),
    ]


def test_upload_session_profile_wraps_the_report(spool: Spool) -> None:
    (sid,) = enqueue(spool, 1)
    with ApiServer([Reply(200, {"success": True, "session_id": 981, "uploaded_at": "now"})]) as server:
        up = uploader(server.url, spool, profile="upload-session", player_id="player-42", send_csv=False)
        assert up.drain().delivered == 1
    (request,) = server.received
    assert request.path == "/api/upload-session"
    assert request.headers["idempotency-key"] == sid
    body = request.json
    assert set(body) == {"player_id", "session_id", "session_data"}
    assert (body["player_id"], body["session_id"]) == ("player-42", sid)
    assert all(type(body["session_data"][name]) is int for name in COUNTS)
    assert body["session_data"]["player_name"] == "Pat Putter"
    assert spool.entries("sent")[0].last_error == "981"


def test_numbers_written_as_strings_are_sent_as_numbers_and_fractions_of_counts_are_dead(
    spool: Spool,
) -> None:
    good, bad = enqueue(spool, 2)
    for sid, changes in ((good, {"total_putts": "3", "total_makes": 2.0, "make_percentage": "66.67"}),
                         (bad, {"total_putts": 10.5})):  # fmt: skip
        path = spool.config.root / "pending" / f"{sid}.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))
    with ApiServer() as server:
        summary = uploader(server.url, spool).drain()
    assert (summary.delivered, summary.dead) == (1, 1)
    (request,) = server.received  # the fractional count never left the device: the API would answer 500
    assert request.json["total_putts"] == 3
    assert type(request.json["total_putts"]) is int
    assert type(request.json["total_makes"]) is int
    assert request.json["make_percentage"] == 66.67
    assert "total_putts is not a whole number" in spool.entries("dead")[0].last_error


# -- transient failures: every session still arrives, oldest first, with the same body --------------------

# A failure, and how many times in a row it hits the oldest session. The link's failures (no answer, a
# gateway, a portal) hold the whole queue however often they repeat; a failure that may be the session's own
# holds the queue for its first wait only (see test_identical_500s_...).
TRANSIENT = {
    "500": (Reply(500, {"success": False, "message": "Database error"}), 1),
    "success_false": (Reply(200, {"success": False, "message": "not stored"}), 1),
    "408": (Reply(408), 1),
    "cut_mid_response": (Reply(201, {"success": True, "session_id": "lost"}, cut=True), 3),
    "read_timeout": (Reply(delay=5.0), 2),
    "502": (Reply(502, "<html>bad gateway</html>", {"Content-Type": "text/html"}), 3),
    "503_without_retry_after": (Reply(503), 3),
    "captive_portal": (Reply(200, "<html>log in</html>", {"Content-Type": "text/html"}), 3),
    "redirect": (Reply(301, "", {"Location": "https://elsewhere.example/api/sessions/upload"}), 3),
}


@pytest.mark.parametrize(("failure", "times"), TRANSIENT.values(), ids=TRANSIENT.keys())
def test_a_transient_failure_delays_but_keeps_the_order(spool: Spool, failure: Reply, times: int) -> None:
    ids = enqueue(spool, 3)
    fake = FakeTime()
    with ApiServer([failure] * times) as server:
        summary = uploader(server.url, spool, fake, read_timeout=0.5).drain()
    assert (summary.delivered, summary.dead, summary.remaining) == (3, 0, 0)
    assert sent_ids(spool) == ids
    assert [r.headers["idempotency-key"] for r in server.received] == [ids[0]] * times + ids
    assert_same_body_per_session(server.received)
    assert len(fake.sleeps) == times
    assert all(0 <= s <= 10.0 for s in fake.sleeps)
    assert spool.entries("sent")[0].attempts == times  # each failure was recorded in the spool


def test_refused_connections_then_a_listening_server(spool: Spool, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="daemon")
    ids = enqueue(spool, 3)
    port = free_port()
    up = Uploader(config(f"http://127.0.0.1:{port}", retry_max_delay=0.2), spool)
    up.start()
    try:
        wait_until(lambda: spool.pending()[0].attempts >= 3)
        assert up.status.state == "waiting"
        assert all(entry.attempts == 0 for entry in spool.pending()[1:])  # the oldest probes, alone
        with ApiServer(port=port) as server:
            wait_until(lambda: len(sent_ids(spool)) == 3)
            up.stop()
    finally:
        up.stop()
    assert sent_ids(spool) == ids
    assert_same_body_per_session(server.received)
    assert len(messages(caplog, "upload API unreachable")) == 1
    assert len(messages(caplog, "reachable again")) == 1


RETRY_AFTER = {
    "429_seconds": (429, "1", 1.0),
    "503_seconds": (503, "2", 2.0),
    "429_http_date": (429, formatdate(EPOCH + 3, usegmt=True), 3.0),
    "503_http_date": (503, formatdate(EPOCH + 4, usegmt=True), 4.0),
    "capped": (429, "3600", 10.0),
}


@pytest.mark.parametrize(("status", "header", "wait"), RETRY_AFTER.values(), ids=RETRY_AFTER.keys())
def test_retry_after_is_honoured(spool: Spool, status: int, header: str, wait: float) -> None:
    ids = enqueue(spool, 2)
    fake = FakeTime()
    reply = Reply(status, {"success": False, "message": "slow down"}, {"Retry-After": header})
    with ApiServer([reply]) as server:
        assert uploader(server.url, spool, fake).drain().delivered == 2
    assert fake.sleeps == [pytest.approx(wait)]  # nothing at all was tried during the wait
    assert sent_ids(spool) == ids
    assert_same_body_per_session(server.received)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("1", 1.0), (" 2.5 ", 2.5), ("0", 0.0), ("-4", 0.0), (formatdate(EPOCH + 7, usegmt=True), 7.0),
     (formatdate(EPOCH - 60, usegmt=True), 0.0), ("soon", None), ("", None), (None, None), ("nan", None)],
)  # fmt: skip
def test_retry_after_parsing(value: str | None, seconds: float | None) -> None:
    assert retry_after(value, EPOCH) == (None if seconds is None else pytest.approx(seconds))


def test_backoff_is_full_jitter_exponential_and_capped() -> None:
    for attempt in range(1, 12):
        waits = [backoff(attempt, 30.0) for _ in range(200)]
        assert all(0.0 <= w <= min(30.0, 2.0 ** (attempt - 1)) for w in waits)
        assert len(set(waits)) > 100  # jittered, not a fixed schedule
    assert max(backoff(20, 30.0) for _ in range(200)) > 20.0


# -- one session's trouble stays its own -------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 404, 405, 413, 422])
def test_a_permanent_refusal_dead_letters_that_session_only(spool: Spool, status: int) -> None:
    ids = enqueue(spool, 3)

    def handler(request: Received) -> Reply:
        if request.headers["idempotency-key"] == ids[0]:
            return Reply(status, {"success": False, "message": "total_putts must be a number"})
        if request.headers["idempotency-key"] == ids[1]:
            return Reply(422, "unprocessable:\n  bad field", {"Content-Type": "text/plain"})
        return server.success()

    with ApiServer(handler) as server:
        summary = uploader(server.url, spool).drain()
    assert (summary.delivered, summary.dead, summary.remaining) == (1, 2, 0)
    assert sent_ids(spool) == [ids[2]]
    reasons = {entry.session_id: entry.last_error for entry in spool.entries("dead")}
    assert reasons == {
        ids[0]: f"HTTP {status}: total_putts must be a number",
        ids[1]: "HTTP 422: unprocessable: bad field",
    }
    assert len(server.received) == 3  # one request each: retrying cannot help


def test_identical_500s_dead_letter_a_session_while_the_others_go_past(spool: Spool) -> None:
    ids = enqueue(spool, 3)

    def handler(request: Received) -> Reply:
        if request.headers["idempotency-key"] == ids[0]:
            return Reply(500, {"success": False, "message": "invalid input syntax for type integer"})
        return server.success()

    fake = FakeTime()
    with ApiServer(handler) as server:
        summary = uploader(server.url, spool, fake, max_server_errors=3).drain()
    assert (summary.delivered, summary.dead) == (2, 1)
    # Its first failure holds the queue for one wait (a blip keeps the order); then the others go past it.
    assert [r.headers["idempotency-key"] for r in server.received] == [ids[0], ids[0], ids[1], ids[2], ids[0]]
    (dead,) = spool.entries("dead")
    assert dead.last_error == "HTTP 500: invalid input syntax for type integer (3 times in a row)"
    assert len(fake.sleeps) == 2
    assert fake.sleeps[0] <= 1.0
    assert fake.sleeps[1] <= 2.0


def test_an_entry_another_process_holds_is_skipped(spool: Spool) -> None:
    ids = enqueue(spool, 2)
    with ApiServer() as server, spool.entry_lock(ids[0]) as mine:
        assert mine
        up = uploader(server.url, spool)
        assert isinstance(up.upload_one(spool.pending()[0]), Skipped)
        summary = up.drain()
    assert (summary.delivered, summary.skipped, summary.remaining) == (1, 1, 0)
    assert [r.headers["idempotency-key"] for r in server.received] == [ids[1]]
    assert [entry.session_id for entry in spool.pending()] == [ids[0]]


class ForgetfulSpool(Spool):
    """A spool whose first mark_sent fails, as on a full disk."""

    failures = 1

    def mark_sent(self, session_id: str, server_id: str) -> None:
        if self.failures:
            self.failures -= 1
            raise SpoolError("cannot mark session sent: No space left on device")
        super().mark_sent(session_id, server_id)


def test_a_delivery_the_spool_could_not_record_is_not_uploaded_again(tmp_path: Path) -> None:
    spool = ForgetfulSpool(SpoolConfig(tmp_path / "spool"), clock=Ticks())
    spool.open()
    (sid,) = enqueue(spool, 1)
    with ApiServer() as server:
        up = uploader(server.url, spool)
        assert up.upload_one(spool.pending()[0]) == Delivered("srv-1")
        assert [entry.session_id for entry in spool.pending()] == [sid]
        assert up.upload_one(spool.pending()[0]) == Delivered("srv-1")
    assert len(server.received) == 1
    assert spool.entries("sent")[0].last_error == "srv-1"
    spool.close()


# -- credentials ---------------------------------------------------------------------------------------


def test_401_pauses_the_queue_until_reconfigured(spool: Spool, caplog: pytest.LogCaptureFixture) -> None:
    ids = enqueue(spool, 3)

    def handler(request: Received) -> Reply:
        if request.headers["authorization"] != f"Bearer {NEW_TOKEN}":
            return Reply(401, {"success": False, "message": "Invalid or expired token"})
        return server.success()

    fake = FakeTime()
    with ApiServer(handler) as server:
        up = uploader(server.url, spool, fake, retry_max_delay=300.0)
        first = up.drain()
        assert first.auth_failure == "HTTP 401: Invalid or expired token"
        assert (first.dead, first.remaining) == (0, 3)
        assert up.status.state == "auth_failed"
        again = up.drain()  # sleeps through the pause (fake clock), tries once, pauses again
        assert again.auth_failure is not None
        assert fake.sleeps == [pytest.approx(300.0)]
        assert len(server.received) == 2
        up.reconfigure(config(server.url, token=SecretStr(NEW_TOKEN), retry_max_delay=300.0))
        assert up.drain().delivered == 3
    assert sent_ids(spool) == ids
    assert spool.entries("dead") == []
    assert len(messages(caplog, "refused the credentials")) == 1
    final = up.status
    assert final.state == "idle"


def test_reconfigure_resumes_the_worker_at_once(spool: Spool) -> None:
    ids = enqueue(spool, 2)
    with ApiServer([Reply(403, {"success": False, "message": "player_id is not yours"})]) as server:
        up = Uploader(config(server.url, retry_max_delay=300.0), spool)
        up.start()
        try:
            wait_until(lambda: up.status.state == "auth_failed")
            time.sleep(0.2)
            assert len(server.received) == 1  # paused: no hammering with a bad token
            assert [entry.attempts for entry in spool.pending()] == [0, 0]  # not the sessions' fault
            started = time.monotonic()
            up.reconfigure(config(server.url, token=SecretStr(NEW_TOKEN), retry_max_delay=300.0))
            wait_until(lambda: len(sent_ids(spool)) == 2, timeout=5.0)
            assert time.monotonic() - started < 2.0
        finally:
            up.stop()
    assert sent_ids(spool) == ids
    assert server.received[-1].headers["authorization"] == f"Bearer {NEW_TOKEN}"


def test_the_token_never_leaks(spool: Spool, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    enqueue(spool, 3)
    # A careless server that echoes the credentials in every refusal.
    script = [(500, {}), (400, {}), (429, {"Retry-After": "1"}), (200, {}), (401, {})]

    def handler(request: Received) -> Reply:
        if not script:
            return server.success()
        status, headers = script.pop(0)
        told = f"rejected {request.headers['authorization']} (token={TOKEN[20:]})"
        return Reply(status, {"success": False, "message": told}, headers)

    outcomes: list[object] = []
    with ApiServer(handler) as server:
        up = uploader(server.url, spool)
        while spool.pending() and len(outcomes) < 20:
            outcomes.append(up.upload_one(spool.pending()[0]))
            if isinstance(outcomes[-1], AuthFailed):
                up.reconfigure(config(server.url))
    assert [type(o).__name__ for o in outcomes] == [
        "Retry",
        "Dead",
        "Retry",
        "Retry",
        "AuthFailed",
        "Delivered",
        "Delivered",
    ]
    texts = [caplog.text, repr(outcomes), repr(up.status), repr(config(server.url))]
    texts += [
        path.read_bytes().decode(errors="replace") for path in spool.config.root.rglob("*") if path.is_file()
    ]
    assert not any(TOKEN in text or TOKEN[20:50] in text for text in texts)
    assert "Bearer ***" in spool.entries("dead")[0].last_error


# -- TLS -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 made with the openssl CLI: (cert, key)."""
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is not installed (install.sh --dev installs it)")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_tls_is_verified_against_the_configured_ca_bundle(
    spool: Spool, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    (sid,) = enqueue(spool, 1)
    with ApiServer(tls=context) as server:
        assert server.url.startswith("https://")
        untrusting = uploader(server.url, spool)
        outcome = untrusting.upload_one(spool.pending()[0])
        assert isinstance(outcome, Retry)
        assert "CERTIFICATE_VERIFY_FAILED" in outcome.reason
        assert server.received == []
        session = RecordingSession()
        trusting = Uploader(
            config(server.url, ca_bundle=cert, connect_timeout=1.5, read_timeout=2.5), spool, session=session
        )
        assert trusting.upload_one(spool.pending()[0]) == Delivered("srv-1")
    assert sent_ids(spool) == [sid]
    (call,) = session.calls
    assert call["verify"] == str(cert)
    assert call["timeout"] == (1.5, 2.5)
    assert call["allow_redirects"] is False


# -- the worker and its status ---------------------------------------------------------------------------


def test_the_worker_uploads_what_is_queued_when_woken(spool: Spool) -> None:
    with ApiServer([Reply(delay=0.3)]) as server:
        up = Uploader(config(server.url, retry_max_delay=300.0), spool)
        up.start()
        try:
            wait_until(lambda: up.status.state == "idle" and up.status.last_time is None)
            ids = enqueue(spool, 2)
            up.wake()
            wait_until(lambda: up.status.state == "uploading", timeout=2.0)
            wait_until(lambda: len(sent_ids(spool)) == 2, timeout=5.0)
            wait_until(lambda: up.status.state == "idle" and up.status.pending == 0)
            assert "delivered" in up.status.last_result
        finally:
            started = time.monotonic()
            up.stop()
            assert time.monotonic() - started < 1.0
    assert sent_ids(spool) == ids


def test_drain_gives_up_at_its_deadline_and_keeps_the_sessions(spool: Spool) -> None:
    ids = enqueue(spool, 2)
    fake = FakeTime()
    up = uploader(f"http://127.0.0.1:{free_port()}", spool, fake)
    summary = up.drain(deadline=EPOCH + 30.0)
    assert (summary.delivered, summary.dead, summary.remaining, summary.auth_failure) == (0, 0, 2, None)
    assert fake.now <= EPOCH + 30.0
    assert (
        len(fake.sleeps) >= 3
    )  # it kept trying, with growing waits, until the next try was past the deadline
    assert [entry.session_id for entry in spool.pending()] == ids
    assert spool.pending()[1].attempts == 0  # the link was down: only the oldest probed it


def test_without_a_url_uploading_is_disabled(spool: Spool) -> None:
    enqueue(spool, 1)
    up = uploader("", spool)
    assert up.status.state == "disabled"
    with pytest.raises(UploadError, match="no upload url"):
        up.drain()
