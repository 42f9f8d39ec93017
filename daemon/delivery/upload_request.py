"""One upload attempt: a queued report's request body, its POST, and the server's answer judged.

Contract: `prepare` reads a `QueuedReport` into the request body or says why there is none; `post` sends it
once through the given `requests.Session` with explicit (connect, read) timeouts, TLS always verified and no
redirect followed, and returns a `Verdict`. A verdict's kind is what the answer means for the queue (the
uploader's docstring lists them); its reason never holds the token, even when a server echoes part of it,
nor credentials in a URL. Nothing here waits, retries or touches the queue: that is the uploader's part.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import requests

from daemon import __version__
from daemon.delivery.upload_api import (
    ENDPOINTS,
    MESSAGE_CHARS,
    QueuedReport,
    Skipped,
    UploadConfig,
    request_body,
    retry_after,
)
from daemon.redact import mask_url

logger = logging.getLogger(__name__)

Kind = Literal["ok", "dead", "auth", "link", "busy", "session", "counted"]
# Answers other than 2xx, 3xx and 429: anything not listed is "counted" (500 and the unexpected).
_STATUS_KINDS: dict[int, Kind] = {
    **dict.fromkeys((400, 404, 405, 413, 422), "dead"),
    **dict.fromkeys((401, 403), "auth"),
    **dict.fromkeys((502, 503, 504), "link"),
    **dict.fromkeys((408, 425), "session"),  # the server timed out or wants a replay: not the session's fault
}
_BEARER = re.compile(r"(?i)bearer\s+\S+")
_WORD = re.compile(r"[A-Za-z0-9._~+/=-]+")  # the characters of a bearer token (RFC 6750), JWTs included
_ECHO = 12  # a run sharing this many characters with the token is taken for a piece of it


@dataclass(frozen=True, slots=True)
class Verdict:
    """How one answer (or its absence) is judged before the uploader's schedule turns it into an outcome."""

    kind: Kind
    reason: str = ""
    server_id: str = ""
    retry_after: float | None = None


def prepare(config: UploadConfig, entry: QueuedReport) -> bytes | Verdict | Skipped:
    """The request body for ENTRY, or why there is none."""
    try:
        report = json.loads(entry.json_path.read_bytes())
        csv = None
        if config.send_csv and entry.csv_path is not None:
            try:
                csv = entry.csv_path.read_bytes().decode("utf-8")
            except FileNotFoundError:
                logger.warning("session %s: CSV report missing, sending the JSON alone", entry.session_id)
        return request_body(config, entry.session_id, report, csv)
    except FileNotFoundError:
        return Skipped("its report is gone")
    except (ValueError, TypeError) as err:  # bad JSON, bad UTF-8, a field that is not a number
        return Verdict("dead", f"unusable report: {err}")
    except OSError as err:
        return Verdict("session", f"cannot read its report: {err}")


def post(
    http: requests.Session, config: UploadConfig, session_id: str, body: bytes, clock: Callable[[], float]
) -> Verdict:
    """POST BODY for SESSION_ID once; CLOCK (epoch seconds) dates a `Retry-After` given as an HTTP date."""
    headers = {
        "Authorization": f"Bearer {config.token.get_secret_value()}",
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Idempotency-Key": session_id,
        "User-Agent": f"putt-daemon/{__version__}",
    }
    url = config.url.rstrip("/") + ENDPOINTS[config.profile]
    try:
        response = http.post(
            url,
            data=body,
            headers=headers,
            timeout=(config.connect_timeout, config.read_timeout),
            verify=str(config.ca_bundle) if config.ca_bundle is not None else True,
            allow_redirects=False,  # a redirected POST becomes a GET and loses its body
        )
    except requests.Timeout as err:
        return Verdict("link", clean(f"timed out: {err}", config))
    except requests.RequestException as err:
        return Verdict("link", clean(f"{type(err).__name__}: {err}", config))
    return judge(response, config, clock())


def judge(response: requests.Response, config: UploadConfig, now: float) -> Verdict:
    """What the server's RESPONSE means for the queue."""
    status = response.status_code
    try:
        payload = response.json()
    except ValueError:
        payload = None
    message = payload.get("message") or payload.get("error") if isinstance(payload, dict) else None
    text = " ".join((message if isinstance(message, str) else response.text).split())
    what = clean(f"HTTP {status}: {text}" if text else f"HTTP {status}", config)
    if 200 <= status < 300:
        if not isinstance(payload, dict):
            return Verdict("link", f"HTTP {status} without the API's JSON (a proxy or captive portal?)")
        if payload.get("success") is False:
            return Verdict("counted", f"{what} (success: false)")
        server_id = payload.get("session_id")
        return Verdict("ok", server_id="" if server_id is None else str(server_id))
    if status in (429, 503):
        wait = retry_after(response.headers.get("Retry-After"), now)
        if wait is not None or status == 429:
            return Verdict("busy", what, retry_after=wait)
    if 300 <= status < 400:
        location = clean(response.headers.get("Location", "?"), config)
        return Verdict("link", f"HTTP {status} redirect to {location}: set the url to the final address")
    return Verdict(_STATUS_KINDS.get(status, "counted"), what)


def clean(text: str, config: UploadConfig) -> str:
    """TEXT without the token (even a server's partial echo of it) or URL credentials, cut short."""
    secret = config.token.get_secret_value()
    if secret:
        text = text.replace(secret, "***")
        grams = {secret[i : i + _ECHO] for i in range(len(secret) - _ECHO + 1)}

        def hide(word: re.Match[str]) -> str:
            run = word.group()
            echoed = any(run[i : i + _ECHO] in grams for i in range(len(run) - _ECHO + 1))
            return "***" if echoed else run

        text = _WORD.sub(hide, text)
    return mask_url(_BEARER.sub("Bearer ***", text))[:MESSAGE_CHARS]
