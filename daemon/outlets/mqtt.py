"""Status outlet: MQTT (state, putts, sessions, problems, Home Assistant discovery, commands); imports paho.

Contract: `MqttOutlet` is an `EventSink`. `start()` hands the connection to paho's own thread
(`connect_async` + `loop_start`, reconnecting with a 1-60 s backoff) and never blocks or raises for a broker
that is down. Under `<prefix>` (default `puttbox/<device_id>`): `availability` is `online` (retained) on
every connect and `offline` as the Last Will and before a clean disconnect; `state` is the newest
`ServiceState` as retained JSON, published when what an operator sees changes, every `state_interval`
seconds for the meters, and on every connect; `putt`, `session` and `error` are QoS 1 events.
No call blocks the vision loop: events go to a bounded `EventQueue` (the oldest dropped and counted past
`max_queued`) that sends them in order while the link is up, each once the broker acknowledged the one
before, so a link lost without a word (a half-open connection, found by paho's keep-alive) loses and
reorders none. The link logs once when it goes down, once when it comes back, and once per refused login.
With `commands`, `<prefix>/cmd/<name>` is answered on `.../result` (see `mqtt_commands`); `snapshot`
publishes a JPEG to `<prefix>/snapshot` (QoS 1, not retained).
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import SecretStr

from daemon.models import PuttEvent, ServiceState, Session
from daemon.outlets.mqtt_commands import CommandOptions, CommandRunner, Commands
from daemon.outlets.mqtt_discovery import (
    NOT_AVAILABLE,
    DiscoveryTarget,
    discovery_messages,
    problem_events,
    problem_lines,
    putt_json,
    session_json,
    state_json,
    state_looks,
)
from daemon.outlets.mqtt_queue import EventQueue

if TYPE_CHECKING:
    from daemon.delivery.reports import SessionReport

logger = logging.getLogger(__name__)

CLOSE_WAIT = 2.0  # seconds close() waits for queued events, then again for `offline`, to reach the broker
_DEVICE_ID = re.compile(r"[A-Za-z0-9_-]+")  # no topic separators or wildcards
Link = Literal["new", "up", "down", "refused", "closed"]


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """Where the broker is and what to publish; the password is never logged."""

    host: str
    device_id: str
    port: int = 1883
    device_name: str = "Putting mat"
    topic_prefix: str = ""  # empty: puttbox/<device_id>
    username: str = ""
    password: SecretStr = SecretStr("")  # noqa: RUF009  # immutable, so one shared default is safe
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    keepalive: int = 60
    state_interval: float = 30.0
    ha_discovery: bool = True
    discovery_prefix: str = "homeassistant"
    commands: bool = False
    snapshots: bool = False
    max_queued: int = 1000
    max_payload: int = 4096

    def __post_init__(self) -> None:
        if not _DEVICE_ID.fullmatch(self.device_id):
            raise ValueError(f"MQTT device id must be letters, digits, _ or - (got {self.device_id!r})")
        if not 0 < self.port < 65536:
            raise ValueError(f"MQTT port must be 1-65535 (got {self.port})")
        if self.keepalive < 1 or self.max_queued < 1 or self.max_payload < 1 or self.state_interval <= 0:
            raise ValueError("MQTT keepalive, state_interval, max_queued and max_payload must be positive")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("MQTT tls_cert and tls_key go together")
        if any(c in self.topic_prefix for c in "+#") or self.topic_prefix.endswith("/"):
            raise ValueError(
                f"MQTT topic prefix must hold no wildcard or trailing / (got {self.topic_prefix!r})"
            )

    @property
    def prefix(self) -> str:
        """The topic every message of this box lives under."""
        return self.topic_prefix or f"puttbox/{self.device_id}"


class MqttOutlet:
    """Publishes the service's state and events to an MQTT broker and takes its commands."""

    def __init__(
        self,
        config: MqttConfig,
        *,
        commands: Commands | None = None,
        version: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._version = version
        self._clock = clock
        self._prefix = config.prefix
        self._lock = threading.Lock()  # guards the fields below; never held while calling paho
        self._state_lock = threading.Lock()  # keeps retained state publishes in order
        self._events = EventQueue(config.max_queued)
        self._online = False
        self._link: Link = "new"
        self._state: str | None = None
        self._looks: ServiceState | None = None  # as last published
        self._next_state = 0.0
        self._problems: dict[str, str] = {}  # condition -> its latest line
        self._client: mqtt.Client | None = None
        self._runner = CommandRunner(
            commands,
            CommandOptions(config.max_payload, config.snapshots, self._publish_state, self._publish_snapshot),
        )

    @property
    def connected(self) -> bool:
        """True while the broker has accepted this outlet's connection."""
        return self._online

    @property
    def unacknowledged(self) -> int:
        """Events queued, or sent and not yet acknowledged by the broker."""
        return self._events.unacknowledged

    @property
    def dropped(self) -> int:
        """Events dropped because the queue was full while the broker was away."""
        return self._events.dropped

    def start(self) -> None:
        """Start connecting on paho's thread; returns at once, whether or not the broker is up."""
        if self._client is not None:
            raise RuntimeError("MQTT outlet already started")
        config = self._config
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"puttbox-{config.device_id}-{secrets.token_hex(3)}"
        )
        client.will_set(f"{self._prefix}/availability", NOT_AVAILABLE, qos=1, retain=True)
        client.reconnect_delay_set(1, 60)
        if config.username:
            client.username_pw_set(config.username, config.password.get_secret_value() or None)
        if config.tls_ca is not None:
            client.tls_set(
                ca_certs=str(config.tls_ca),
                certfile=None if config.tls_cert is None else str(config.tls_cert),
                keyfile=None if config.tls_key is None else str(config.tls_key),
            )
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = lambda _client, _userdata, mid, _reason, _props: self._events.acknowledged(mid)
        self._client = client
        self._events.start(lambda topic, payload: client.publish(topic, payload, qos=1).mid)
        client.connect_async(config.host, config.port, config.keepalive)
        client.loop_start()

    def putt(self, event: PuttEvent, session_id: str) -> None:
        """Queue the putt event for the broker."""
        self._events.put(f"{self._prefix}/putt", putt_json(event, session_id))

    def session(self, session: Session, report: SessionReport) -> None:
        """Queue the session summary, the same totals as its report."""
        self._events.put(f"{self._prefix}/session", session_json(session, report))

    def state(self, state: ServiceState) -> None:
        """Keep STATE; publish it (retained) if it looks different or the interval is up; and an `error`
        event for each problem that appeared or cleared."""
        looks, now = state_looks(state), self._clock()
        with self._lock:
            self._state = state_json(state)
            due = looks != self._looks or now >= self._next_state
        if due:
            self._publish_state(looks)
        previous, self._problems = self._problems, problem_lines(state.problems)
        for event in problem_events(previous, self._problems):
            self._events.put(f"{self._prefix}/error", event)

    def close(self) -> None:
        """Give queued events a moment to go, publish `offline`, disconnect, stop paho's thread."""
        self._events.drain(CLOSE_WAIT)
        with self._lock:
            client, online = self._client, self._online
            self._link = "closed"
        if client is None:
            return
        info = client.publish(f"{self._prefix}/availability", NOT_AVAILABLE, qos=1, retain=True)
        if online:
            try:
                info.wait_for_publish(CLOSE_WAIT)
            except (ValueError, RuntimeError) as err:  # the link dropped meanwhile: the Will says it
                logger.debug("MQTT offline message not sent: %s", err)
        client.disconnect()
        client.loop_stop()
        self._events.stop()
        with self._lock:
            self._online = False
        unsent = self._events.unacknowledged
        if unsent:
            logger.warning("MQTT outlet closed with %d events not acknowledged", unsent)

    def _publish_state(self, looks: ServiceState | None = None) -> None:
        with self._state_lock:
            with self._lock:
                client, payload = self._client, self._state
                if not self._online or client is None or payload is None:
                    return
                self._next_state = self._clock() + self._config.state_interval
                self._looks = looks or self._looks
            client.publish(f"{self._prefix}/state", payload, qos=1, retain=True)

    def _publish_snapshot(self, picture: bytes) -> None:
        if self._client is not None:
            self._client.publish(f"{self._prefix}/snapshot", picture, qos=1)

    # paho's thread from here on: every callback catches at the top, a raise would kill the network loop.

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        try:
            if reason.is_failure:
                self._refused(reason)
                return
            self._connected(client)
        except Exception:
            logger.exception("MQTT on_connect failed")

    def _refused(self, reason: ReasonCode) -> None:
        with self._lock:
            # A refusal that arrives after close() is the answer to an attempt already under way.
            if self._link in ("refused", "closed"):
                return
            self._link = "refused"
        logger.error(
            "MQTT broker %s:%d refused the connection: %s; retrying with backoff",
            self._config.host, self._config.port, reason,
        )  # fmt: skip

    def _connected(self, client: mqtt.Client) -> None:
        config, prefix = self._config, self._prefix
        with self._lock:
            if self._link == "closed":
                return
            again = self._link in ("down", "refused")
            self._link = "up"
        client.publish(f"{prefix}/availability", "online", qos=1, retain=True)
        if config.ha_discovery:
            client.subscribe(f"{config.discovery_prefix}/status", qos=1)
            self._publish_discovery(client)
        if config.commands:
            client.subscribe([(f"{prefix}/cmd/+", 1), (f"{prefix}/cmd/session/+", 1)])
        with self._lock:
            self._online = True
        queued, dropped = self._events.link_up()
        self._publish_state()
        where = f"{config.host}:{config.port}"
        if again:
            logger.info(
                "MQTT broker %s reachable again; sending %d queued events, %d dropped", where, queued, dropped
            )
        else:
            logger.info("MQTT broker %s connected", where)

    def _publish_discovery(self, client: mqtt.Client) -> None:
        config = self._config
        target = DiscoveryTarget(
            config.device_id, config.device_name, self._prefix, config.discovery_prefix, self._version
        )
        for message in discovery_messages(target):
            client.publish(message.topic, message.payload, qos=1, retain=True)

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        try:
            self._went_down("cannot reach the MQTT broker %s:%d; retrying with backoff")
        except Exception:
            logger.exception("MQTT on_connect_fail failed")

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, _reason: ReasonCode, _props: Any
    ) -> None:
        try:
            self._went_down("lost the MQTT broker %s:%d; queueing events and reconnecting")
        except Exception:
            logger.exception("MQTT on_disconnect failed")

    def _went_down(self, message: str) -> None:
        self._events.link_down()
        with self._lock:
            self._online = False
            if self._link in ("down", "refused", "closed"):
                return
            self._link = "down"
        logger.warning(message, self._config.host, self._config.port)

    def _on_message(self, client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            self._message(client, message)
        except Exception:
            logger.exception("MQTT message on %s not handled", message.topic)

    def _message(self, client: mqtt.Client, message: mqtt.MQTTMessage) -> None:
        topic, config = message.topic, self._config
        if config.ha_discovery and topic == f"{config.discovery_prefix}/status":
            if message.payload == b"online":  # Home Assistant restarted: it forgot the entities
                self._publish_discovery(client)
            return
        commands = f"{self._prefix}/cmd/"
        if not config.commands or not topic.startswith(commands) or topic.endswith("/result"):
            return
        answer = self._runner.answer(topic.removeprefix(commands), bytes(message.payload))
        client.publish(f"{topic}/result", answer, qos=1)
