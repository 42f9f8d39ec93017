"""The HTTP side of `putt-daemon calibrate --serve`: one static page and a small JSON API.

Routes: `GET /` the page; `GET /frame.jpg` the frame being calibrated; `GET /api/calibration` its size, the
clicked regions in the Proof of Putt order and the current points; `POST /api/frame` a new frame;
`POST /api/derive` the ramp lanes and cup quadrants of the points sent; `POST /api/save` validate and save
(`daemon.commands.calibrate_page.page`).

Access: with a token set, every request carries it (`?token=` or the `X-Calibration-Token` header), compared
in constant time. Without one the server listens on localhost only and also refuses a Host header that is not
localhost, so a web page elsewhere cannot reach it by DNS rebinding. POSTs must be JSON, which a cross-site
form cannot send.
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from daemon.commands.calibrate_page.page import CalibrationPage, RequestError, derived_regions, parse_points

logger = logging.getLogger(__name__)

TOKEN_HEADER = "X-Calibration-Token"  # noqa: S105  # the header's name, not a secret
MAX_BODY = 256 * 1024
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})


class _Handler(BaseHTTPRequestHandler):
    server: PageServer
    server_version = "putt-daemon-calibrate"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  # the base class's name
        logger.debug("%s %s", self.address_string(), format % args)

    def _allowed(self, query: dict[str, list[str]]) -> bool:
        token = self.server.page.config.token
        if token is None:
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
            return host in LOCAL_HOSTS
        given = self.headers.get(TOKEN_HEADER) or next(iter(query.get("token", [])), "")
        return hmac.compare_digest(given.encode(), token.encode())

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")  # the page's URL may carry the token
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: HTTPStatus, data: object) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _body(self) -> object:
        if self.headers.get_content_type() != "application/json":
            raise RequestError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send application/json")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request too large")
        try:
            return json.loads(self.rfile.read(length) or b"null")
        except ValueError as err:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"not JSON: {err}") from err

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        if not self._allowed(parse_qs(url.query)):
            self._json(HTTPStatus.FORBIDDEN, {"error": "forbidden: open the URL printed in the terminal"})
            return
        page = self.server.page
        try:
            if (method, url.path) in {("GET", "/"), ("GET", "/index.html")}:
                self._send(HTTPStatus.OK, self.server.html, "text/html; charset=utf-8")
            elif (method, url.path) == ("GET", "/frame.jpg"):
                self._send(HTTPStatus.OK, page.frame_jpeg(), "image/jpeg")
            elif (method, url.path) == ("GET", "/api/calibration"):
                self._json(HTTPStatus.OK, page.current())
            elif (method, url.path) == ("POST", "/api/frame"):
                self._body()
                self._json(HTTPStatus.OK, page.new_frame())
            elif (method, url.path) == ("POST", "/api/derive"):
                self._json(HTTPStatus.OK, {"derived": derived_regions(parse_points(self._body()))})
            elif (method, url.path) == ("POST", "/api/save"):
                self._json(HTTPStatus.OK, page.save(parse_points(self._body())))
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {method} {url.path}"})
        except RequestError as err:
            self._json(err.status, {"error": str(err), "problems": list(err.problems)})
        except Exception as err:  # the top of a request: one bad request never stops the page
            logger.exception("calibration page: %s %s failed", method, url.path)
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": str(err)})

    def do_GET(self) -> None:
        """Serve the page, the frame or the current calibration."""
        self._handle("GET")

    def do_POST(self) -> None:
        """A new frame, derived regions, or a save."""
        self._handle("POST")


class PageServer(ThreadingHTTPServer):
    """The HTTP server for one calibration page."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], page: CalibrationPage) -> None:
        self.page = page
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.html = resources.files(__package__).joinpath("index.html").read_bytes()
        super().__init__(address, _Handler)
