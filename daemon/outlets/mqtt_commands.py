"""Status outlet helper: the MQTT commands, checked and run on paho's thread; imports no paho.

Contract: `CommandRunner.answer(name, payload)` checks PAYLOAD (empty, or a JSON object of at most
`max_payload` bytes; no command takes arguments yet), runs command NAME and returns the JSON for
`<prefix>/cmd/<name>/result`: `{"ok": true}` or `{"ok": false, "error": "<why>"}`. It never raises, and a
refused command (unknown name, bad payload, snapshots off, a session already open) changes nothing. The
commands: `state` (publish the state now), `session/start`, `session/end`, and `snapshot` (a JPEG of the
newest frame with the calibrated regions drawn, handed to `publish_snapshot` before the answer; only when
snapshots are on, since the picture shows the room). The service acts on session commands between two
frames, so the answer says the request was taken, not that the loop has acted on it yet.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

logger = logging.getLogger(__name__)


class CommandError(Exception):
    """A command that was refused; its message is the answer's `error`."""


class Commands(Protocol):
    """What the service lets MQTT ask of it; called on paho's thread, so each only leaves a request."""

    def start_session(self) -> None:
        """Open a session now; raises CommandError when one is open already."""
        ...

    def end_session(self) -> None:
        """End the open session now."""
        ...

    def publish_state_now(self) -> None:
        """Hand the current state to the outlets now."""
        ...

    def snapshot_jpeg(self, draw: bool) -> bytes | None:  # noqa: FBT001  # the service's own signature
        """The newest frame as JPEG, the calibrated regions drawn if DRAW; None before the first frame."""
        ...


def command_arguments(payload: bytes, max_payload: int) -> dict[str, object]:
    """A command's arguments: PAYLOAD must be at most MAX_PAYLOAD bytes of a JSON object, or empty."""
    if len(payload) > max_payload:
        raise CommandError(f"payload over {max_payload} bytes")
    try:
        arguments = json.loads(payload) if payload.strip() else {}
    except ValueError as err:  # UnicodeDecodeError is one
        raise CommandError(f"payload is not JSON: {err}") from err
    if not isinstance(arguments, dict):
        raise CommandError("payload must be a JSON object")
    return arguments


@dataclass(frozen=True, slots=True)
class CommandOptions:
    """How commands are checked, and where their side messages go."""

    max_payload: int
    snapshots: bool  # PUTT_MQTT_SNAPSHOT: the picture shows the room, so it is off unless asked for
    publish_state: Callable[[], None]  # re-send the newest state at once
    publish_snapshot: Callable[[bytes], None]


class CommandRunner:
    """Runs the commands MQTT receives against the service."""

    def __init__(self, commands: Commands | None, options: CommandOptions) -> None:
        self._commands = commands
        self._options = options
        self._handlers: dict[str, Callable[[], None]] = {"state": self._state}
        if commands is not None:
            self._handlers |= {
                "session/start": commands.start_session,
                "session/end": commands.end_session,
                "snapshot": self._snapshot,
            }

    def answer(self, name: str, payload: bytes) -> str:
        """Run command NAME with PAYLOAD; the JSON answer for its result topic."""
        try:
            self._run(name, payload)
        except CommandError as err:
            logger.info("MQTT command %.60r refused: %s", name, err)
            return json.dumps({"ok": False, "error": str(err)})
        return json.dumps({"ok": True})

    def _run(self, name: str, payload: bytes) -> None:
        command_arguments(payload, self._options.max_payload)
        handler = self._handlers.get(name)
        if handler is None:
            raise CommandError(f"unknown command {name!r}")
        logger.info("MQTT command %s", name)
        try:
            handler()
        except CommandError:
            raise
        except Exception as err:  # the service's own failure: answer it, keep paho's thread alive
            logger.exception("MQTT command %s failed", name)
            raise CommandError(f"{name} failed: {err}") from err

    def _state(self) -> None:
        self._options.publish_state()
        if self._commands is not None:
            self._commands.publish_state_now()

    def _snapshot(self) -> None:
        if not self._options.snapshots:
            raise CommandError("snapshots are off (PUTT_MQTT_SNAPSHOT=false)")
        assert self._commands is not None  # noqa: S101  # only registered with commands
        picture = self._commands.snapshot_jpeg(draw=True)
        if picture is None:
            raise CommandError("no camera frame yet")
        self._options.publish_snapshot(picture)
