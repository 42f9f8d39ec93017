"""Model download: a model and its sidecar over HTTP into the models folder; resumable, capped, hash-checked.

Contract: `ModelFetcher.sidecar()` reads the sidecar (the model's URL with `.json` in place of `.onnx`, as
`putt-daemon export` writes the two side by side) and checks that it names the expected sha256;
`download()` fetches the model into `<name>-<sha12>.onnx.partial`, going on from what an earlier attempt left
with an HTTP Range request, and checks size and sha256. `LinkError` means try again later (no answer, a cut,
5xx, 408, 429); `ModelError` means this file will not do. Every request has explicit timeouts, asks for the
bytes as stored (no compression, so a range counts file bytes) and is cut short by the stop event.
This is the only module of the model update that uses requests.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from daemon import __version__
from daemon.errors import ModelError
from daemon.redact import mask_url
from daemon.vision.detector import file_sha256

logger = logging.getLogger(__name__)

SIDECAR_FORMAT = 1  # the `format_version` `putt-daemon export` writes
SIDECAR_MAX_BYTES = 1 << 20
CHUNK = 1 << 16
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
MESSAGE_CHARS = 200
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)|bytes \*/(\d+)")


@dataclass(frozen=True, slots=True)
class ModelUpdateConfig:
    """Which model to fetch, what it must hash to, where it goes and how large it may be."""

    url: str  # http(s), its path ends in .onnx
    sha256: str  # lower-case hex
    folder: Path
    max_bytes: int

    @property
    def target(self) -> Path:
        """Where the accepted model is kept."""
        stem = Path(urllib.parse.unquote(urllib.parse.urlsplit(self.url).path)).stem
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", stem).strip(".") or "model"
        return self.folder / f"{safe}-{self.sha256[:12]}.onnx"

    @property
    def partial(self) -> Path:
        """The download in progress."""
        return self.target.with_name(self.target.name + ".partial")

    @property
    def sidecar(self) -> Path:
        """Where the accepted model's sidecar is kept."""
        return self.target.with_suffix(".json")

    @property
    def sidecar_url(self) -> str:
        """The sidecar's URL: the model's, with `.json` in place of `.onnx` at the end of the path."""
        parts = urllib.parse.urlsplit(self.url)
        return urllib.parse.urlunsplit(parts._replace(path=parts.path[: -len(".onnx")] + ".json"))


class LinkError(Exception):
    """The server could not be reached or broke off: try again later, resuming."""


class StoppedError(Exception):
    """The stop event was set in the middle of a download."""


def installed_model(config: ModelUpdateConfig) -> Path | None:
    """The accepted model for CONFIG, if it is in the models folder and its sha256 still matches."""
    try:
        actual = file_sha256(config.target)
    except FileNotFoundError:
        return None
    except OSError as err:
        logger.warning("model update: cannot read %s (%s); using PUTT_MODEL_PATH", config.target, err)
        return None
    if actual != config.sha256:
        logger.warning(
            "model update: %s has sha256 %s, not %s; using PUTT_MODEL_PATH",
            config.target,
            actual,
            config.sha256,
        )
        return None
    return config.target


class ModelFetcher:
    """Fetches CONFIG's sidecar and model with SESSION; STOPPING cuts a download short."""

    def __init__(
        self, config: ModelUpdateConfig, session: requests.Session, stopping: threading.Event
    ) -> None:
        self.config = config
        self._http = session
        self._stopping = stopping
        self._resumed = False  # some of the partial file came from an earlier attempt

    def sidecar(self) -> tuple[dict[str, object], bytes]:
        """The sidecar, parsed and as sent, once it names the expected sha256."""
        url = self.config.sidecar_url
        with self._get(url, {}) as response:
            _check_status(response, url)
            raw = b""
            for chunk in response.iter_content(CHUNK):
                raw += chunk
                if len(raw) > SIDECAR_MAX_BYTES:
                    raise ModelError(f"{mask_url(url)}: sidecar larger than {SIDECAR_MAX_BYTES} bytes")
        try:
            data = json.loads(raw)
        except ValueError as err:
            raise ModelError(f"{mask_url(url)}: sidecar is not JSON") from err
        if not isinstance(data, dict) or data.get("format_version") != SIDECAR_FORMAT:
            raise ModelError(f"{mask_url(url)}: not a model sidecar of format {SIDECAR_FORMAT}")
        named = str(data.get("sha256", "")).lower()
        if named != self.config.sha256:
            raise ModelError(f"{mask_url(url)}: sidecar names sha256 {named}, not PUTT_MODEL_SHA256")
        return data, raw

    def download(self) -> None:
        """The whole model in the partial file, its sha256 checked."""
        config = self.config
        self._download()
        actual = file_sha256(config.partial)
        if actual == config.sha256:
            return
        config.partial.unlink()
        if self._resumed:  # the file may have changed on the server between two attempts: once more, whole
            self._resumed = False
            raise LinkError("sha256 mismatch after resuming; downloading it again from the start")
        raise ModelError(f"{mask_url(config.url)}: sha256 {actual} does not match PUTT_MODEL_SHA256")

    @contextmanager
    def _get(self, url: str, headers: dict[str, str]) -> Iterator[requests.Response]:
        """A streamed GET; the link's failures, also while the body is read, become `LinkError`."""
        base = {"User-Agent": f"putt-daemon/{__version__}", "Accept-Encoding": "identity"}
        try:
            with self._http.get(
                url, headers=base | headers, stream=True, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)
            ) as response:
                yield response
        except requests.RequestException as err:
            raise LinkError(f"{type(err).__name__}: {mask_url(str(err))}"[:MESSAGE_CHARS]) from err

    def _download(self) -> None:
        config, partial = self.config, self.config.partial
        have = partial.stat().st_size if partial.is_file() else 0
        with self._get(config.url, {"Range": f"bytes={have}-"} if have else {}) as response:
            start, total = _content_range(response)
            if response.status_code == 416 and have:
                if total == have:
                    return  # an earlier run had it all and stopped before checking it
                partial.unlink()
                raise LinkError("the partial download is longer than the model; starting over")
            _check_status(response, config.url)
            if response.status_code != 206:  # the whole file, whatever was asked for
                start, total = 0, _int(response.headers.get("Content-Length"))
            if start not in (0, have):
                raise LinkError(f"asked for bytes from {have}, got them from {start}")
            if total is not None and total > config.max_bytes:
                raise ModelError(f"{mask_url(config.url)}: {total} bytes, over PUTT_MODEL_MAX_BYTES")
            self._resumed = self._resumed or start > 0
            size = start
            with partial.open("ab" if start else "wb") as out:
                for chunk in response.iter_content(CHUNK):
                    if self._stopping.is_set():
                        raise StoppedError
                    size += len(chunk)
                    if size > config.max_bytes:
                        raise ModelError(f"{mask_url(config.url)}: more than PUTT_MODEL_MAX_BYTES")
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        if total is not None and size != total:
            raise LinkError(f"the server sent {size} of {total} bytes")


def _check_status(response: requests.Response, url: str) -> None:
    status = response.status_code
    if status in (408, 429) or status >= 500:
        raise LinkError(f"HTTP {status} from {mask_url(url)}")
    if status not in (200, 206):
        raise ModelError(f"{mask_url(url)}: HTTP {status}")


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def _content_range(response: requests.Response) -> tuple[int, int | None]:
    """First byte and total size from a 206's or a 416's Content-Range, (0, None) without one."""
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
    if match is None:
        return 0, None
    if match.group(3) is not None:
        return 0, int(match.group(3))
    return int(match.group(1)), _int(match.group(2))
