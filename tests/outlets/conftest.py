"""Outlet fixtures: a real mosquitto broker on a free port, configured from a file in tmp_path."""

from __future__ import annotations

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
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


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
                Received(message.topic, message.payload.decode(errors="replace"), bool(message.retain))
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


@pytest.fixture
def subscribers() -> Iterator[Callable[..., Subscriber]]:
    made: list[Subscriber] = []

    def make(port: int, *topics: str) -> Subscriber:
        made.append(Subscriber(port, *topics))
        return made[-1]

    yield make
    for subscriber in made:
        subscriber.close()
