"""The web API's contract for the uploader: its settings, the bodies it sends, the outcomes of an attempt.

What is sent for each profile (shared README, "Upload API"): the report's flat fields as JSON numbers (counts
whole), the player fields from the settings, the CSV when asked for. Waits are tenacity's full-jitter
exponential backoff; `Retry-After` is read as seconds or as an HTTP date. Nothing here touches the network.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import SecretStr
from tenacity import RetryCallState, Retrying, wait_random_exponential

Profile = Literal["sessions-upload", "upload-session"]
ENDPOINTS: dict[Profile, str] = {
    "sessions-upload": "/api/sessions/upload",
    "upload-session": "/api/upload-session",
}
BACKOFF_MULTIPLIER = 1.0  # seconds: the first retry comes within 1 s, the n-th within 2**(n-1) s
BUSY_RECHECK = 5.0  # seconds before looking again at a session another process is uploading
MESSAGE_CHARS = 300
_COUNTS = ("total_putts", "total_makes", "total_misses", "best_streak", "most_makes_in_60_seconds")
_MEASURES = ("make_percentage", "session_duration_seconds", "putts_per_minute", "makes_per_minute")
_REQUIRED = ("total_putts", "total_makes", "session_duration_seconds")  # the API's 400 otherwise


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadConfig:
    """Where and how to upload; built by the service from `UploadSettings`."""

    url: str  # base URL; empty disables uploading
    profile: Profile = "sessions-upload"
    token: SecretStr  # never logged, never in an error, the queue or the status
    player_id: str = ""
    player_name: str = ""
    player_email: str = ""
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    retry_max_delay: float = 300.0
    send_csv: bool = True
    ca_bundle: Path | None = None  # passed as `verify`: TLS verification is never turned off
    max_server_errors: int = 8


@dataclass(frozen=True, slots=True)
class UploadStatus:
    """What the status outlets show about uploading."""

    state: Literal["idle", "uploading", "waiting", "auth_failed", "disabled"]
    last_time: float | None
    last_result: str
    pending: int
    next_attempt: float | None


class QueuedReport(Protocol):
    """The parts of a spool entry the uploader reads."""

    @property
    def session_id(self) -> str: ...
    @property
    def json_path(self) -> Path: ...
    @property
    def csv_path(self) -> Path | None: ...


class UploadQueue(Protocol):
    """The durable queue as the uploader uses it (the spool, which logs each entry it sends or kills)."""

    def pending(self) -> Sequence[QueuedReport]: ...
    def record_failure(self, session_id: str, error: str) -> None: ...
    def mark_sent(self, session_id: str, server_id: str) -> None: ...
    def mark_dead(self, session_id: str, reason: str) -> None: ...
    def entry_lock(self, session_id: str) -> AbstractContextManager[bool]: ...


@dataclass(frozen=True, slots=True)
class Delivered:
    """The server stored the session under `server_id`."""

    server_id: str


@dataclass(frozen=True, slots=True)
class Retry:
    """Not delivered yet; the session is tried again in `after_seconds`."""

    after_seconds: float
    reason: str


@dataclass(frozen=True, slots=True)
class Dead:
    """Retrying cannot help; the session was dead-lettered."""

    reason: str


@dataclass(frozen=True, slots=True)
class AuthFailed:
    """The server refused the credentials; the whole queue pauses."""

    reason: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """Not attempted: another process holds the entry, or it is no longer pending."""

    reason: str


UploadOutcome = Delivered | Retry | Dead | AuthFailed | Skipped


@dataclass(frozen=True, slots=True)
class DrainSummary:
    """What a foreground `drain` did with the sessions pending when it started."""

    delivered: int
    dead: int
    skipped: int
    remaining: int
    auth_failure: str | None


def backoff(attempt: int, cap: float) -> float:
    """Full-jitter exponential wait before retry number ATTEMPT (1-based), at most CAP seconds."""
    state = RetryCallState(Retrying(), None, (), {})
    state.attempt_number = max(attempt, 1)
    return float(wait_random_exponential(multiplier=BACKOFF_MULTIPLIER, max=cap)(state))


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds a `Retry-After` header asks to wait (delta seconds or an HTTP date), None if unusable."""
    if not value or not value.strip():
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = parsedate_to_datetime(value.strip())
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def _number(name: str, value: object, *, whole: bool) -> int | float:
    number = float(value.strip()) if isinstance(value, str) and value.strip() else value
    if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
        raise ValueError(f"report field {name} is not a number (got {value!r})")
    if whole:
        if not float(number).is_integer():
            raise ValueError(f"report field {name} is not a whole number (got {value!r})")
        return int(number)
    return number


def session_object(report: object, config: UploadConfig) -> dict[str, Any]:
    """The report as the API reads it: flat numbers as JSON numbers, the configured player's name."""
    if not isinstance(report, Mapping):
        raise TypeError("the JSON report is not an object")
    data = dict(report)
    for name in _REQUIRED:
        if name not in data:
            raise ValueError(f"report has no {name}")
    for name in (*_COUNTS, *_MEASURES, "fastest_21_makes_seconds"):
        if name in data and not (name == "fastest_21_makes_seconds" and data[name] is None):
            data[name] = _number(name, data[name], whole=name in _COUNTS)
    info = data.get("session_info")
    info = dict(info) if isinstance(info, Mapping) else {}
    for key, configured in (("player_name", config.player_name), ("player_email", config.player_email)):
        value = configured or data.get(key) or info.get(key)
        if value:
            data[key] = info[key] = value
    if info:
        data["session_info"] = info
    return data


def request_body(config: UploadConfig, session_id: str, report: object, csv: str | None) -> bytes:
    """The JSON body for CONFIG's profile; the same inputs always give the same bytes."""
    session = session_object(report, config)
    body: dict[str, Any]
    if config.profile == "sessions-upload":
        body = session
    else:
        body = {"player_id": config.player_id, "session_id": session_id, "session_data": session}
    if csv is not None:
        body["csv_data"] = csv
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def config_problem(config: UploadConfig) -> str | None:
    if not config.url:
        return "no upload url is set"
    if config.profile == "upload-session" and not config.player_id:
        return "profile upload-session needs a player id"
    return None
