"""Model updates against a real HTTP server on 127.0.0.1 that honours Range requests and can cut a reply."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import signal
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import onnx
import pytest

from daemon.configuration import load_settings
from daemon.delivery.reports import SessionReport
from daemon.errors import ConfigError
from daemon.models import Frame, PuttEvent, ServiceState, Session
from daemon.service import Service, ServicePlan
from daemon.service.model_update import ModelUpdateConfig, ModelUpdater, UpdateStatus, installed_model
from daemon.settings import Settings
from daemon.vision.detector import BallDetector, DetectorConfig
from daemon.vision.pipeline import PipelineStep
from tests.conftest import REPO, ServiceProcess, service_state, wait_until

SHIPPED = REPO / "models" / "ball.onnx"
SIM = "sim://?seed=0&putts=4&realtime=1"


# -- a static file server -------------------------------------------------------------------------------


@dataclass
class FileServer:
    """Serves FILES (URL path -> bytes) with Range support; `cut` cuts the next answers for a path short."""

    files: dict[str, bytes]
    cut: dict[str, list[int]] = field(default_factory=dict)  # path -> byte counts, one answer each
    honour_range: bool = True
    busy: bool = False  # answer 503 to everything
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _FileHandler)
        self._server.daemon_threads = True
        self._server.files = self  # type: ignore[attr-defined]  # the handler finds its server's files here
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _FileHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  # the base class's name
        """Silent: the tests read `requests`."""

    def do_GET(self) -> None:
        files: FileServer = self.server.files  # type: ignore[attr-defined]  # set by FileServer
        files.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        body = files.files.get(self.path)
        if body is None or files.busy:
            self.send_response(503 if files.busy else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = 0
        wanted = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if wanted and files.honour_range:
            start = int(wanted.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        cuts = files.cut.get(self.path)
        if cuts:
            self.wfile.write(body[start : start + cuts.pop(0)])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body[start:])


@pytest.fixture
def server() -> Iterator[FileServer]:
    files = FileServer({})
    yield files
    files.close()


# -- models -----------------------------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def variant(tmp_path: Path, tag: str) -> Path:
    """The shipped model with one more metadata entry: the same network, other bytes, another sha256."""
    model = onnx.load(str(SHIPPED))
    onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, "variant": tag})
    path = tmp_path / f"{tag}.onnx"
    onnx.save(model, str(path))
    return path


def sidecar(model: bytes, **changes: object) -> bytes:
    """The shipped sidecar describing MODEL (its sha256), with CHANGES."""
    data = json.loads(SHIPPED.with_suffix(".json").read_text())
    return json.dumps(data | {"sha256": sha256(model)} | changes).encode()


def publish(server: FileServer, path: str, model: bytes, side: bytes | None = None) -> str:
    """Put MODEL and its sidecar (default: one describing it) on the server; returns the model's URL."""
    server.files[path] = model
    server.files[path.removesuffix(".onnx") + ".json"] = sidecar(model) if side is None else side
    return server.url(path)


def updater(tmp_path: Path, url: str, sha: str, max_bytes: int = 64 << 20) -> ModelUpdater:
    config = ModelUpdateConfig(url, sha, tmp_path / "models", max_bytes)
    return ModelUpdater(config, DetectorConfig(SHIPPED), retry_max_delay=0.2)


def settled(update: ModelUpdater) -> UpdateStatus:
    wait_until(lambda: update.status.state in ("ready", "rejected"), timeout=30)
    return update.status


# -- the updater on its own -------------------------------------------------------------------------------


def test_a_good_model_is_accepted_stored_and_found_again(tmp_path: Path, server: FileServer) -> None:
    model = SHIPPED.read_bytes()
    update = updater(tmp_path, publish(server, "/v2/ball.onnx", model), sha256(model))
    update.start()
    assert settled(update) == UpdateStatus("ready")
    prepared = update.take()
    assert prepared is not None
    assert prepared.path == tmp_path / "models" / f"ball-{sha256(model)[:12]}.onnx"
    assert prepared.path.read_bytes() == model
    assert json.loads(prepared.path.with_suffix(".json").read_text())["sha256"] == sha256(model)
    assert prepared.detector.info.names == {0: "ball"}
    assert update.status == UpdateStatus("installed")
    assert update.take() is None
    assert installed_model(update.config) == prepared.path
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [
        prepared.path.with_suffix(".json").name,
        prepared.path.name,
    ]
    assert server.paths() == ["/v2/ball.json", "/v2/ball.onnx"]  # the sidecar first: it is small
    update.stop()
    prepared.detector.close()


def test_an_interrupted_download_resumes_with_a_range_request(tmp_path: Path, server: FileServer) -> None:
    model = SHIPPED.read_bytes()
    url = publish(server, "/ball.onnx", model)
    server.cut["/ball.onnx"] = [1_000_000, 700_000]  # two answers cut short, then the rest
    update = updater(tmp_path, url, sha256(model))
    update.start()
    assert settled(update) == UpdateStatus("ready")
    ranges = [headers.get("range") for path, headers in server.requests if path == "/ball.onnx"]
    assert ranges[0] is None
    # Each attempt goes on from what the one before had written (less what the cut left in flight).
    starts = [int(str(text).removeprefix("bytes=").removesuffix("-")) for text in ranges[1:]]
    assert len(starts) == 2
    assert 0 < starts[0] <= 1_000_000 < starts[1] <= starts[0] + 700_000
    prepared = update.take()
    assert prepared is not None
    assert prepared.path.read_bytes() == model
    assert not list((tmp_path / "models").glob("*.partial"))
    update.stop()
    prepared.detector.close()


def test_a_server_that_ignores_range_gets_the_whole_file_again(tmp_path: Path, server: FileServer) -> None:
    model = SHIPPED.read_bytes()
    url = publish(server, "/ball.onnx", model)
    server.cut["/ball.onnx"] = [1_000_000]
    server.honour_range = False
    update = updater(tmp_path, url, sha256(model))
    update.start()
    assert settled(update) == UpdateStatus("ready")
    prepared = update.take()
    assert prepared is not None
    assert prepared.path.read_bytes() == model
    update.stop()
    prepared.detector.close()


def test_a_partial_file_left_complete_by_a_restart_is_checked_not_fetched_again(
    tmp_path: Path, server: FileServer
) -> None:
    model = SHIPPED.read_bytes()
    update = updater(tmp_path, publish(server, "/ball.onnx", model), sha256(model))
    update.config.folder.mkdir()
    update.config.partial.write_bytes(model)  # the process stopped between the last byte and the checks
    update.start()
    assert settled(update) == UpdateStatus("ready")
    assert [h.get("range") for p, h in server.requests if p == "/ball.onnx"] == [f"bytes={len(model)}-"]
    update.stop()


def rejected(tmp_path: Path, url: str, sha: str, max_bytes: int = 64 << 20) -> str:
    update = updater(tmp_path, url, sha, max_bytes)
    update.start()
    status = settled(update)
    update.stop()
    assert status.state == "rejected"
    assert update.take() is None
    left = sorted(p.name for p in (tmp_path / "models").iterdir())
    assert left == [], left  # nothing of a refused download is kept
    assert installed_model(update.config) is None
    return status.detail


def test_a_file_with_another_hash_is_refused(tmp_path: Path, server: FileServer) -> None:
    expected = SHIPPED.read_bytes()
    other = variant(tmp_path, "other").read_bytes()
    # The sidecar names the expected model; the server sends another one.
    url = publish(server, "/ball.onnx", other, sidecar(expected))
    detail = rejected(tmp_path, url, sha256(expected))
    assert f"sha256 {sha256(other)} does not match PUTT_MODEL_SHA256" in detail


def test_a_rejected_model_is_fetched_again_later_and_taken_once_the_server_has_it_right(
    tmp_path: Path, server: FileServer
) -> None:
    model = SHIPPED.read_bytes()
    # Caught half-way through an upload: the sidecar is the new one, the model still cut short.
    url = publish(server, "/ball.onnx", model[:1_500_000], sidecar(model))
    config = ModelUpdateConfig(url, sha256(model), tmp_path / "models", 64 << 20)
    update = ModelUpdater(config, DetectorConfig(SHIPPED), retry_max_delay=0.2, retry_rejected=2.0)
    update.start()
    assert settled(update).state == "rejected"
    assert "does not match PUTT_MODEL_SHA256" in update.status.detail
    fetches = server.paths().count("/ball.onnx")
    server.files["/ball.onnx"] = model
    wait_until(lambda: update.status.state == "ready", timeout=30)
    assert server.paths().count("/ball.onnx") == fetches + 1
    prepared = update.take()
    assert prepared is not None
    assert prepared.path.read_bytes() == model
    update.stop()
    prepared.detector.close()


def test_a_truncated_model_is_refused_by_onnx_runtime(tmp_path: Path, server: FileServer) -> None:
    truncated = SHIPPED.read_bytes()[:1_500_000]  # its hash is what the operator set: only loading can tell
    detail = rejected(tmp_path, publish(server, "/ball.onnx", truncated), sha256(truncated))
    assert "not a loadable ONNX model" in detail


def test_a_file_that_is_not_onnx_is_refused(tmp_path: Path, server: FileServer) -> None:
    page = b"<html><body>Sign in to the Wi-Fi</body></html>\n"
    detail = rejected(tmp_path, publish(server, "/ball.onnx", page), sha256(page))
    assert "not a loadable ONNX model" in detail


def test_a_model_over_the_size_cap_is_refused_before_it_is_read(tmp_path: Path, server: FileServer) -> None:
    model = SHIPPED.read_bytes()
    detail = rejected(tmp_path, publish(server, "/ball.onnx", model), sha256(model), max_bytes=1 << 20)
    assert f"{len(model)} bytes, over PUTT_MODEL_MAX_BYTES" in detail


def test_a_sidecar_that_disagrees_with_the_model_is_refused(tmp_path: Path, server: FileServer) -> None:
    model = SHIPPED.read_bytes()
    side = sidecar(model, names={"0": "golf ball"}, imgsz=[640, 640])
    detail = rejected(tmp_path, publish(server, "/ball.onnx", model, side), sha256(model))
    assert "the sidecar disagrees with the model" in detail
    assert "classes {'0': 'golf ball'}" in detail
    assert "imgsz [640, 640]" in detail


def test_a_sidecar_naming_another_model_stops_the_download_before_it_starts(
    tmp_path: Path, server: FileServer
) -> None:
    model = SHIPPED.read_bytes()
    url = publish(server, "/ball.onnx", model, sidecar(b"another model"))
    detail = rejected(tmp_path, url, sha256(model))
    assert "sidecar names sha256" in detail
    assert server.paths() == ["/ball.json"]


def test_a_missing_sidecar_is_refused(tmp_path: Path, server: FileServer) -> None:
    model = SHIPPED.read_bytes()
    server.files["/ball.onnx"] = model
    detail = rejected(tmp_path, server.url("/ball.onnx"), sha256(model))
    assert detail.endswith("/ball.json: HTTP 404")


# -- in the running service -------------------------------------------------------------------------------


@dataclass
class Recorder:
    """An event sink keeping the states; an observer keeping the index of every frame through the loop."""

    states: list[ServiceState] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)

    def putt(self, event: PuttEvent, session_id: str) -> None:
        pass

    def session(self, session: Session, report: SessionReport) -> None:
        pass

    def state(self, state: ServiceState) -> None:
        self.states.append(state)

    def last(self, name: str) -> Any:
        """A field of the newest state, None before the first."""
        return getattr(self.states[-1], name) if self.states else None

    def add(self, frame: Frame, step: PipelineStep) -> None:  # noqa: ARG002  # the observer protocol
        self.frames.append(frame.index)

    def close(self) -> None:
        pass


def run_service(settings: Settings, recorder: Recorder) -> tuple[Service, threading.Thread]:
    plan = ServicePlan(mode="live", event_sinks=(recorder,), observers=(recorder,))
    service = Service(settings, plan)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    return service, thread


def live_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **values: str) -> Settings:
    monkeypatch.setenv("PUTT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PUTT_CAMERA_SOURCE", SIM)
    monkeypatch.setenv("PUTT_CAMERA_FPS", "10")  # a frame every 100 ms: the loop keeps up on a busy machine
    for key, value in values.items():
        monkeypatch.setenv(f"PUTT_{key.upper()}", value)
    return Settings()


def test_a_good_update_is_swapped_in_between_two_frames(
    tmp_path: Path, server: FileServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="daemon.service")
    old = variant(tmp_path, "old")
    model = SHIPPED.read_bytes()
    server.busy = True  # until the service has run on the old model for a while
    settings = live_settings(
        tmp_path,
        monkeypatch,
        model_path=str(old),
        model_url=server.url("/v2/ball.onnx"),
        model_sha256=sha256(model),
    )
    recorder = Recorder()
    service, thread = run_service(settings, recorder)
    try:
        wait_until(lambda: len(recorder.frames) >= 10 and recorder.last("model_update") == "waiting", 30)
        assert recorder.last("model") == "old.onnx"
        assert "HTTP 503" in recorder.last("model_update_error")
        publish(server, "/v2/ball.onnx", model)
        server.busy = False  # the next attempt finds it
        name = f"ball-{sha256(model)[:12]}.onnx"
        wait_until(lambda: recorder.last("model") == name, 30)
        swapped_at = len(recorder.frames)
        wait_until(lambda: len(recorder.frames) >= swapped_at + 10, 30)
        # The new model keeps the verifier's second look.
        running = service._vision.pipeline._detector  # type: ignore[union-attr]
        assert isinstance(running, BallDetector)
        assert running.verifier is not None
        assert running.verifier.path == settings.model.verifier
    finally:
        service.request_stop()
        thread.join(timeout=15)
    (line,) = [r.getMessage() for r in caplog.records if "in use from frame" in r.getMessage()]
    first_new = int(line.rsplit(" ", 1)[1])
    at = recorder.frames.index(first_new)
    assert at >= 10
    assert recorder.frames[at - 1] == first_new - 1  # the frame before the swap went through, none between
    assert recorder.frames == sorted(set(recorder.frames))
    final = recorder.states[-1]
    assert (final.model, final.model_update, final.model_sha256) == (name, "installed", sha256(model)[:12])
    assert final.problems == ()


def test_a_refused_update_is_reported_and_the_old_model_keeps_running(
    tmp_path: Path, server: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = variant(tmp_path, "old")
    page = b"<html>not a model</html>"
    url = publish(server, "/ball.onnx", page)
    settings = live_settings(
        tmp_path, monkeypatch, model_path=str(old), model_url=url, model_sha256=sha256(page)
    )
    recorder = Recorder()
    service, thread = run_service(settings, recorder)
    try:
        wait_until(lambda: recorder.last("model_update") == "rejected", 30)
        frames = len(recorder.frames)
        wait_until(lambda: len(recorder.frames) >= frames + 10, 30)
        state = recorder.states[-1]
    finally:
        service.request_stop()
        thread.join(timeout=15)
    assert state.model == "old.onnx"
    assert state.status == "degraded"
    assert "not a loadable ONNX model" in state.model_update_error
    assert any(p.startswith("model update rejected: ") for p in state.problems)


# -- `putt-daemon run`: restart and reload ----------------------------------------------------------------


def test_a_restart_runs_the_stored_model_and_a_reload_fetches_a_new_one(
    tmp_path: Path, server: FileServer, cli_env: dict[str, str]
) -> None:
    state = tmp_path / "state"
    first = SHIPPED.read_bytes()
    second = variant(tmp_path, "second").read_bytes()
    url = publish(server, "/v1/ball.onnx", first)
    env_file = tmp_path / "putt-daemon.env"
    base = f"PUTT_STATE_DIR={state}\nPUTT_CAMERA_SOURCE={SIM}\n"
    env_file.write_text(base + f"PUTT_MODEL_URL={url}\nPUTT_MODEL_SHA256={sha256(first)}\n")
    name = f"ball-{sha256(first)[:12]}.onnx"

    def folder(name: str) -> Path:  # each process its own notify socket
        path = tmp_path / name
        path.mkdir()
        return path

    run = ServiceProcess(folder("first"), cli_env, "--env-file", str(env_file), "--no-watch")
    try:
        run.wait_line(rf"model update: {name} in use from frame \d+")
        wait_until(lambda: service_state(state).get("model_update") == "installed", 30)
        assert run.stop() == 0
    finally:
        run.close()
    assert service_state(state)["model"] == name
    fetched = len(server.requests)

    run = ServiceProcess(folder("second"), cli_env, "--env-file", str(env_file), "--no-watch")
    try:
        run.wait_datagram(lambda d: "READY=1" in d)
        run.wait_line(rf"service ready: .*model {re.escape(name)}")
        assert service_state(state)["model_update"] == "installed"
        assert len(server.requests) == fetched  # nothing downloaded again

        url = publish(server, "/v2/ball.onnx", second)
        env_file.write_text(base + f"PUTT_MODEL_URL={url}\nPUTT_MODEL_SHA256={sha256(second)}\n")
        run.process.send_signal(signal.SIGHUP)
        second_name = f"ball-{sha256(second)[:12]}.onnx"
        run.wait_line(rf"model update: {second_name} in use from frame \d+")
        wait_until(lambda: service_state(state).get("model") == second_name, 30)
        assert run.stop() == 0
    finally:
        run.close()
    assert server.paths()[fetched:] == ["/v2/ball.json", "/v2/ball.onnx"]
    assert sorted(p.name for p in (state / "models").iterdir()) == [
        second_name.replace(".onnx", ".json"),
        second_name,
    ]


# -- settings -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "line"),
    [
        ({"PUTT_MODEL_URL": "https://models.example.com/ball.onnx"}, "PUTT_MODEL_SHA256: required when"),
        (
            {"PUTT_MODEL_URL": "https://models.example.com/ball.pt", "PUTT_MODEL_SHA256": "a" * 64},
            "PUTT_MODEL_URL: the path must end in .onnx",
        ),
    ],
)
def test_a_model_url_needs_a_hash_and_an_onnx_path(
    values: dict[str, str], line: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert [text for text in caught.value.lines if text.startswith(line)], caught.value.lines
