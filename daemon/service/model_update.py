"""Model updates: the model PUTT_MODEL_URL names, fetched in the background, verified, handed to the loop.

Contract: `ModelUpdater` fetches one model on its own thread (`model_fetch` does the HTTP) and never touches
the vision loop; the loop calls `take()` at the top of a frame and, when it returns a `PreparedModel`, swaps
its detector for that one between two frames. Acceptance, in this order: the sidecar names PUTT_MODEL_SHA256;
the model is at most `max_bytes`; its sha256 matches; ONNX Runtime opens it through `BallDetector.open`; the
sidecar's classes, input size and layout agree with what the model says of itself. The link failing is
retried with tenacity's full-jitter backoff, resuming the download; anything else rejects the update: its
files are removed, the reason is logged and shown in the status, the running model stays, and the fetch
is tried again after `RETRY_REJECTED` (at once when the URL or the hash changes): a server caught half-way
through replacing the file, or a disk that was full, is often right a few hours later.

Files, in `<state dir>/models`: `<name>-<sha12>.onnx.partial` while downloading, then `<name>-<sha12>.json`
and, renamed into place last, `<name>-<sha12>.onnx`; so a model by that name was accepted. At start-up
`installed_model` finds it, and the service runs it instead of PUTT_MODEL_PATH while its sha256 matches.
Earlier downloads go once a new one is accepted.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, TypeVar

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    sleep_using_event,
    stop_when_event_set,
    wait_random_exponential,
)

from daemon.atomicfile import fsync_dir, write_atomic
from daemon.errors import ModelError
from daemon.redact import mask_url
from daemon.service.model_fetch import (
    LinkError,
    ModelFetcher,
    ModelUpdateConfig,
    StoppedError,
    installed_model,
)
from daemon.vision.detector import BallDetector, DetectorConfig, ModelInfo

__all__ = ["ModelUpdateConfig", "ModelUpdater", "PreparedModel", "UpdateStatus", "installed_model"]

logger = logging.getLogger(__name__)

UpdateState = Literal["off", "downloading", "waiting", "ready", "installed", "rejected"]
RETRY_MAX_DELAY = 300.0  # seconds: the longest wait between two attempts while the link fails
RETRY_REJECTED = 6 * 3600.0  # seconds from a rejection to the next fetch: a few a day, no load on the server
_DOWNLOADED = re.compile(r"-[0-9a-f]{12}\.(onnx|json)$")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class PreparedModel:
    """An accepted model, opened on the updater's thread; the loop gives it the running detector's crop."""

    path: Path
    sha256: str
    detector: BallDetector


@dataclass(frozen=True, slots=True)
class UpdateStatus:
    """Where the update is, and why it failed (a rejection, or the last attempt while waiting)."""

    state: UpdateState
    detail: str = ""


class ModelUpdater:
    """Fetches and verifies one model on a worker thread; `take()` hands it over once it is ready.

    DETECTOR holds the thresholds and threads the new model is opened with, and names the model running now
    (never removed). Without SESSION the updater makes its own and closes it in `stop`.
    """

    def __init__(
        self,
        config: ModelUpdateConfig,
        detector: DetectorConfig,
        *,
        session: requests.Session | None = None,
        retry_max_delay: float = RETRY_MAX_DELAY,
        retry_rejected: float = RETRY_REJECTED,
    ) -> None:
        self.config = config
        self._detector = detector
        self._owns_session = session is None
        self._http = session if session is not None else requests.Session()
        self._retry_max_delay = retry_max_delay
        self._retry_rejected = retry_rejected
        self._lock = threading.Lock()  # guards _status and _prepared
        self._status = UpdateStatus("downloading")
        self._prepared: PreparedModel | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def status(self) -> UpdateStatus:
        """The current state for the status outlets."""
        with self._lock:
            return self._status

    def start(self) -> None:
        """Start fetching on a worker thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="model-update", daemon=True)
            self._thread.start()

    def take(self) -> PreparedModel | None:
        """The accepted model, once; from then on the caller owns its detector."""
        with self._lock:
            prepared, self._prepared = self._prepared, None
            if prepared is not None:
                self._status = UpdateStatus("installed")
            return prepared

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker; a model accepted but not taken is closed, a partial download is kept."""
        thread, self._thread = self._thread, None
        self._stopping.set()
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("model update still waiting for the server after %.1f s; leaving it", timeout)
                return
        if self._owns_session:
            self._http.close()
        with self._lock:
            prepared, self._prepared = self._prepared, None
        if prepared is not None:
            prepared.detector.close()

    # -- worker thread ---------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                prepared = self._fetch()
            except (StoppedError, LinkError):
                return  # a LinkError gets out of the retries only when stopping
            except (ModelError, OSError) as err:
                self._reject(str(err))
            except Exception as err:  # the worker's top: report it, the running model stays
                logger.exception("model update failed")
                self._reject(f"{type(err).__name__}: {err}")
            else:
                self._accept(prepared)
                return
            if self._stopping.wait(self._retry_rejected):
                return

    def _accept(self, prepared: PreparedModel) -> None:
        if self._stopping.is_set():  # stopped while ONNX Runtime opened it: the next start finds it stored
            prepared.detector.close()
            return
        with self._lock:
            self._prepared = prepared
            self._status = UpdateStatus("ready")
        self._remove_other_downloads()
        logger.info("model update: %s accepted (sha256 %s)", self.config.target.name, self.config.sha256[:12])

    def _fetch(self) -> PreparedModel:
        config = self.config
        config.folder.mkdir(parents=True, exist_ok=True)
        for stale in config.folder.glob("*.partial"):
            if stale != config.partial:  # a download for an earlier URL or hash
                stale.unlink(missing_ok=True)
        logger.info("model update: fetching %s (sha256 %s)", mask_url(config.url), config.sha256[:12])
        fetcher = ModelFetcher(config, self._http, self._stopping)
        retrying = Retrying(
            retry=retry_if_exception_type(LinkError),
            wait=wait_random_exponential(multiplier=1.0, max=self._retry_max_delay),
            stop=stop_when_event_set(self._stopping),
            sleep=sleep_using_event(self._stopping),
            before_sleep=self._waiting,
            reraise=True,
        )
        sidecar, raw = retrying(self._attempt, fetcher.sidecar)
        retrying(self._attempt, fetcher.download)
        return self._open(sidecar, raw)

    def _attempt(self, step: Callable[[], _T]) -> _T:
        with self._lock:
            self._status = UpdateStatus("downloading")
        return step()

    def _waiting(self, retry_state: RetryCallState) -> None:
        outcome = retry_state.outcome
        reason = str(outcome.exception()) if outcome is not None else "?"
        wait = retry_state.next_action.sleep if retry_state.next_action is not None else 0.0
        with self._lock:
            self._status = UpdateStatus("waiting", reason)
        # Said once per step; the retries after it only at DEBUG, the status shows the latest reason.
        level = logging.WARNING if retry_state.attempt_number == 1 else logging.DEBUG
        logger.log(level, "model update: %s; next try in %.1f s", reason, wait)

    def _reject(self, reason: str) -> None:
        self.config.partial.unlink(missing_ok=True)
        with self._lock:
            self._status = UpdateStatus("rejected", reason)
        logger.error(
            "model update rejected, the running model stays: %s; next try in %.0f s",
            reason,
            self._retry_rejected,
        )

    def _open(self, sidecar: dict[str, object], raw: bytes) -> PreparedModel:
        """Open the download with ONNX Runtime, check the sidecar against it, then move both into place."""
        config = self.config
        opened = BallDetector.open(
            replace(self._detector, path=config.partial, sha256=config.sha256, crop=None)
        )
        try:
            _check_sidecar(sidecar, opened.info, config.target.name)
            write_atomic(config.sidecar, raw)
            config.partial.replace(config.target)  # last: a model by this name has passed every check
            fsync_dir(config.folder)
        except BaseException:
            opened.close()
            raise
        return PreparedModel(config.target, config.sha256, opened)

    def _remove_other_downloads(self) -> None:
        keep = {path.resolve() for path in (self.config.target, self.config.sidecar, self._detector.path)}
        for path in self.config.folder.iterdir():
            if _DOWNLOADED.search(path.name) and path.resolve() not in keep:
                path.unlink(missing_ok=True)


def _check_sidecar(sidecar: dict[str, object], info: ModelInfo, name: str) -> None:
    names = {str(k): v for k, v in sorted(info.names.items())}
    problems = []
    if sidecar.get("names") != names:
        problems.append(f"classes {sidecar.get('names')} but the model has {names}")
    if sidecar.get("imgsz") != list(info.imgsz):
        problems.append(f"imgsz {sidecar.get('imgsz')} but the model has {list(info.imgsz)}")
    if sidecar.get("layout") != info.layout:
        problems.append(f"layout {sidecar.get('layout')} but the model has {info.layout}")
    if problems:
        raise ModelError(f"{name}: the sidecar disagrees with the model: " + "; ".join(problems))
