"""A scripted web API on 127.0.0.1 for the delivery tests: every request recorded, every answer scripted.

`ApiServer(script)` answers each request with the next `Reply` of a list (then a default 201 success), or
with what a handler function returns for the `Received` request. A `Reply` can also wait before answering
(`delay`, to outlast a read timeout) or cut the connection half-way through its body (`cut`). With an
`ssl.SSLContext` it speaks HTTPS. Nothing is logged; handler-side socket errors (a client that gave up) are
kept in `errors`, not raised.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted answer. BODY: a dict or list is sent as JSON, str or bytes as they are."""

    status: int = 201
    body: object = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (ended early by stop())
    cut: bool = False  # send the headers and half the body, then close the connection


@dataclass(frozen=True)
class Received:
    """One request as the server read it; header names are lower case."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    time: float
    complete: bool = True  # False: the client went away before sending all of Content-Length

    @property
    def json(self) -> Any:
        """The body parsed as JSON (None if it is not JSON)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


Handler = Callable[[Received], Reply]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: ApiServer

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.api.tls is not None:  # handshake in the handler thread, not the accept loop
            sock = self.api.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, _request: Any, client_address: Any) -> None:
        self.api.errors.append(repr(client_address))


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; Nagle would delay the second
    timeout = 10  # an idle keep-alive connection is dropped after this
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  # the base class's name
        """Silent: the tests read `received` instead."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        received = Received(self.command, self.path, headers, body, time.monotonic(), len(body) == length)
        api = self.server.api
        reply = api.answer(received)
        if reply.delay and api.stopping.wait(reply.delay):
            return
        payload = _encode(reply.body if reply.body is not None else api.success_body())
        self.send_response(reply.status)
        has_type = any(name.lower() == "content-type" for name in reply.headers)
        if not has_type:
            self.send_header("Content-Type", "application/json")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if reply.cut:
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(payload)


def _encode(body: object) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


class ApiServer:
    """The server; use as a context manager or call start() and stop()."""

    def __init__(
        self, script: Sequence[Reply] | Handler = (), *, port: int = 0, tls: ssl.SSLContext | None = None
    ) -> None:
        self.tls = tls
        self.received: list[Received] = []
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self._lock = threading.RLock()  # handler functions call success() while answer() holds it
        self._handler: Handler | None = script if callable(script) else None
        self._script = [] if callable(script) else list(script)
        self._ids = 0
        self._server = _Server(("127.0.0.1", port), _RequestHandler)
        self._server.api = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def answer(self, received: Received) -> Reply:
        """Record RECEIVED and pick its reply."""
        with self._lock:
            self.received.append(received)
            if self._handler is not None:
                return self._handler(received)
            return self._script.pop(0) if self._script else Reply()

    def success_body(self) -> dict[str, object]:
        """The API's 201 answer with the next server id: srv-1, srv-2, ..."""
        with self._lock:
            self._ids += 1
            return {"success": True, "message": "Session uploaded", "session_id": f"srv-{self._ids}"}

    def success(self) -> Reply:
        """The API's 201 answer, for handler functions."""
        return Reply(201, self.success_body())

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The requests once at least COUNT have arrived (AssertionError after TIMEOUT)."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.received)} requests arrived, wanted {count}")
            time.sleep(0.01)
        return list(self.received)

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
