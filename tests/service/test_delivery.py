"""`run` delivers: sessions go through the spool to a real HTTP server, and a 401 waits for a new token."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ServiceProcess, service_state, wait_until
from tests.delivery.api_server import ApiServer, Received, Reply

SIM = "sim://?seed=0&putts=3&realtime=1"
TOKEN = "eyJ.first-token.sig"  # noqa: S105  # a test token


@pytest.fixture
def api() -> Iterator[tuple[ApiServer, list[str]]]:
    """A server that accepts only the tokens in its list (the test may change the list)."""
    good = [TOKEN]

    def handle(request: Received) -> Reply:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in good:
            return Reply(401, {"success": False, "message": "invalid token"})
        return Reply(201, {"success": True, "message": "Session uploaded", "session_id": "srv-1"})

    server = ApiServer(handle)
    with server:
        yield server, good


def env_file(path: Path, state: Path, url: str, token: str) -> Path:
    path.write_text(
        f"PUTT_STATE_DIR={state}\nPUTT_CAMERA_SOURCE={SIM}\nPUTT_SESSION_IDLE_TIMEOUT=5\n"
        f"PUTT_UPLOAD_URL={url}\nPUTT_UPLOAD_TOKEN={token}\nPUTT_UPLOAD_PLAYER_NAME=Pat Putter\n"
    )
    return path


def test_sessions_reach_the_api_with_their_id_as_idempotency_key(
    tmp_path: Path, cli_env: dict[str, str], api: tuple[ApiServer, list[str]]
) -> None:
    server, _ = api
    state = tmp_path / "state"
    settings = env_file(tmp_path / "putt.env", state, server.url, TOKEN)
    run = ServiceProcess(tmp_path, cli_env, "--env-file", str(settings))
    try:
        (request, *_) = server.wait_for(1, timeout=90)
        body = request.json
        assert request.path == "/api/sessions/upload"
        assert request.headers["idempotency-key"] == body["session_id"]
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert isinstance(body["total_putts"], int)
        assert body["session_info"]["player_name"] == "Pat Putter"
        wait_until(lambda: list((state / "spool" / "sent").glob("*.json")), timeout=10)
        wait_until(lambda: service_state(state).get("last_upload_result"), timeout=10)
        assert run.stop() == 0
    finally:
        run.close()
    assert TOKEN not in "\n".join(run.lines)
    assert TOKEN not in (state / "status.json").read_text()


def test_a_401_pauses_the_queue_until_a_new_token_arrives(
    tmp_path: Path, cli_env: dict[str, str], api: tuple[ApiServer, list[str]]
) -> None:
    server, good = api
    good[:] = ["eyJ.second-token.sig"]
    state = tmp_path / "state"
    settings = env_file(tmp_path / "putt.env", state, server.url, TOKEN)
    run = ServiceProcess(tmp_path, cli_env, "--env-file", str(settings))
    try:
        server.wait_for(1, timeout=90)
        wait_until(lambda: service_state(state).get("upload") == "auth_failed", timeout=15)
        assert not list((state / "spool" / "dead").glob("*.json"))
        refused = len(server.received)
        time.sleep(2)
        assert len(server.received) == refused  # paused, not hammering the server
        replacement = env_file(tmp_path / "new.env", state, server.url, "eyJ.second-token.sig")
        replacement.replace(settings)
        wait_until(lambda: list((state / "spool" / "sent").glob("*.json")), timeout=20)
        assert server.received[-1].headers["authorization"] == "Bearer eyJ.second-token.sig"
        assert run.stop() == 0
    finally:
        run.close()
    assert "first-token" not in "\n".join(run.lines)
