"""Outlet fixtures: a real mosquitto broker on a free port, configured from a file in tmp_path."""

from __future__ import annotations

import contextlib
import getpass
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from daemon.outlets.mqtt import MqttConfig, MqttOutlet
from tests.conftest import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
DEVICE = "rig1"
PREFIX = f"puttbox/{DEVICE}"


def config(port: int, **changes: object) -> MqttConfig:
    """An outlet's config for the broker on PORT, device DEVICE, with CHANGES."""
    return MqttConfig(host="127.0.0.1", port=port, device_id=DEVICE, **changes)  # type: ignore[arg-type]


@pytest.fixture
def outlets() -> Iterator[Callable[..., MqttOutlet]]:
    """Start outlets, `outlets(config, **keywords)`; each is closed after the test."""
    made: list[MqttOutlet] = []

    def make(config: MqttConfig, **kwargs: object) -> MqttOutlet:
        outlet = MqttOutlet(config, **kwargs)  # type: ignore[arg-type]  # the test's keyword mapping
        outlet.start()
        made.append(outlet)
        return outlet

    yield make
    for outlet in made:
        outlet.close()


# Fuzzed commands. Topic names the protocol allows: mosquitto drops a client that sends controls or
# non-characters.
SEGMENT = st.text(
    st.characters(blacklist_characters="/+#\x00", blacklist_categories=("Cs", "Cc", "Cn")),
    min_size=1,
    max_size=12,
)
KNOWN = ("state", "session/start", "session/end", "snapshot")
NAMES = st.one_of(st.sampled_from(KNOWN), SEGMENT, SEGMENT.map("session/{}".format)).filter(
    lambda name: name.split("/")[-1] != "result"
)
PAYLOADS = st.one_of(
    st.binary(max_size=100),
    st.integers(65, 300_000).map(lambda size: b"{" + b" " * (size - 2) + b"}"),  # valid, but oversize
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=8,
    ).map(lambda value: json.dumps(value).encode()),
)


def well_formed(payload: bytes, max_payload: int) -> bool:
    """Whether a command may take PAYLOAD: empty, or a JSON object of at most MAX_PAYLOAD bytes."""
    if len(payload) > max_payload:
        return False
    try:
        return isinstance(json.loads(payload) if payload.strip() else {}, dict)
    except ValueError:
        return False


class Broker:
    """A mosquitto process that can be stopped and started again on the same port."""

    def __init__(self, folder: Path, port: int, extra: str = "") -> None:
        self.folder = folder
        self.port = port
        self.config = folder / "mosquitto.conf"
        self.log = folder / "mosquitto.log"
        self.config.write_text(
            # Started as root, mosquitto drops to its own user, which cannot read tmp_path: stay.
            f"user {getpass.getuser()}\nlistener {port} 127.0.0.1\npersistence false\n"
            + (extra if "allow_anonymous" in extra else f"allow_anonymous true\n{extra}")
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start mosquitto and wait until it takes connections."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                time.sleep(0.05)
                continue
            return
        raise RuntimeError(f"mosquitto did not listen on {self.port}")

    def stop(self) -> None:
        """Stop mosquitto (SIGTERM), as a broker restart would."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


def _broker(tmp_path: Path, extra: str = "") -> Iterator[Broker]:
    broker = Broker(tmp_path, free_port(), extra)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    """A running anonymous broker on 127.0.0.1."""
    yield from _broker(tmp_path)


@pytest.fixture
def restartable_mosquitto(tmp_path: Path) -> Iterator[Broker]:
    """A running broker that the test may stop and start again (same port, same config)."""
    yield from _broker(tmp_path)


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[type[Broker]]:
    """Start a broker with extra config lines: `broker_factory(folder, port, extra)` then `.start()`."""
    started: list[Broker] = []

    class Tracked(Broker):
        def start(self) -> None:
            started.append(self)
            super().start()

    yield Tracked
    for broker in started:
        broker.stop()


@dataclass(frozen=True)
class Received:
    topic: str
    payload: str
    retain: bool
    data: bytes = b""  # the payload as sent

    def json(self) -> dict[str, object]:
        value = json.loads(self.payload)
        assert isinstance(value, dict)
        return value


class Subscriber:
    """A paho client that records every message on TOPICS."""

    def __init__(self, port: int, *topics: str) -> None:
        self.messages: list[Received] = []
        self._changed = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if topics:
            self.client.subscribe([(topic, 1) for topic in topics])
            assert subscribed.wait(5)

    def _on_message(self, _client: object, _userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._changed:
            self.messages.append(
                Received(
                    message.topic,
                    message.payload.decode(errors="replace"),
                    bool(message.retain),
                    bytes(message.payload),
                )
            )
            self._changed.notify_all()

    def on(self, topic: str) -> list[Received]:
        with self._changed:
            return [m for m in self.messages if m.topic == topic]

    def wait(self, predicate: Callable[[list[Received]], bool], timeout: float = 5.0) -> list[Received]:
        """The messages so far, once PREDICATE holds for them."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.messages), timeout):
                raise AssertionError(f"timed out; got {[(m.topic, m.payload[:80]) for m in self.messages]}")
            return list(self.messages)

    def wait_on(self, topic: str, count: int = 1, timeout: float = 5.0) -> list[Received]:
        self.wait(lambda ms: sum(m.topic == topic for m in ms) >= count, timeout)
        return self.on(topic)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def ask(watcher: Subscriber, sender: Subscriber, topic: str, payload: bytes) -> dict[str, object]:
    """Send the command on TOPIC (<prefix>/cmd/<name>) and wait for its answer; WATCHER hears cmd/#."""
    seen = len(watcher.on(f"{topic}/result"))
    sender.client.publish(topic, payload, qos=1).wait_for_publish(5)
    return watcher.wait_on(f"{topic}/result", seen + 1)[-1].json()


@pytest.fixture
def subscribers() -> Iterator[Callable[..., Subscriber]]:
    made: list[Subscriber] = []

    def make(port: int, *topics: str) -> Subscriber:
        made.append(Subscriber(port, *topics))
        return made[-1]

    yield make
    for subscriber in made:
        subscriber.close()


class TcpProxy:
    """Forwards a port on 127.0.0.1 to the broker. Frozen, it lets no byte through but closes nothing, as
    a link that dies without a word does (a cable pulled, a router gone): both ends hold a half-open link."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._frozen = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> None:
        self._frozen.set()

    def thaw(self) -> None:
        self._frozen.clear()

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                _shut(sock)

    def _keep(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._sockets.extend(sockets)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._frozen.is_set():  # the broker cannot be reached: the connection hangs, unanswered
                self._keep(client)
                threading.Thread(target=self._pump, args=(client, None), daemon=True).start()
                continue
            upstream = socket.create_connection(("127.0.0.1", self._target))
            self._keep(client, upstream)
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket | None) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                break
            if not data:
                break
            if self._frozen.is_set() or sink is None:
                continue  # lost on the way
            try:
                sink.sendall(data)
            except OSError:
                break
        _shut(source)
        if sink is not None and not self._frozen.is_set():  # frozen, the other side hears nothing
            _shut(sink)


def _shut(sock: socket.socket) -> None:
    """Close SOCK, waking a thread blocked reading it."""
    with contextlib.suppress(OSError):  # not connected any more
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.fixture
def proxy(mosquitto: Broker) -> Iterator[TcpProxy]:
    """A proxy in front of the `mosquitto` broker that the test can freeze."""
    made = TcpProxy(mosquitto.port)
    made.start()
    yield made
    made.close()
