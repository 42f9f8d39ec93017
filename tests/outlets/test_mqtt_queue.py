"""The MQTT event queue alone: order, one event in flight, the bound, holding back while the link is down."""

from __future__ import annotations

import itertools
import threading

import pytest

from daemon.outlets.mqtt_queue import EventQueue
from tests.conftest import wait_until


class Client:
    """Stands for paho: notes what was handed over and gives message ids from 1."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def publish(self, _topic: str, payload: str) -> int:
        with self._lock:
            self.sent.append(payload)
            return next(self._ids)


@pytest.fixture
def queue_and_client():
    client = Client()
    queue = EventQueue(3)
    queue.start(client.publish)
    yield queue, client
    queue.stop()


def test_events_go_in_order_each_after_the_one_before_is_acknowledged(queue_and_client):
    queue, client = queue_and_client
    for number in range(3):
        queue.put("puttbox/t/putt", str(number))
    assert queue.link_up() == (3, 0)
    wait_until(lambda: client.sent == ["0"])
    queue.acknowledged(7)  # another message's id (a state, say): nothing moves
    assert queue.unacknowledged == 3
    queue.acknowledged(1)
    wait_until(lambda: client.sent == ["0", "1"])
    queue.link_down()  # the one in flight is the client's to send again; the rest wait
    queue.acknowledged(2)
    wait_until(lambda: queue.unacknowledged == 1)
    queue.drain(5)  # returns at once: the link is down
    assert client.sent == ["0", "1"]
    queue.link_up()
    wait_until(lambda: client.sent == ["0", "1", "2"])
    queue.acknowledged(3)
    queue.drain(5)
    assert queue.unacknowledged == 0


def test_past_the_bound_the_oldest_go_and_are_counted(queue_and_client):
    queue, client = queue_and_client
    for number in range(5):
        queue.put("puttbox/t/putt", str(number))
    assert queue.dropped == 2
    assert queue.link_up() == (3, 2)
    assert queue.dropped == 0
    wait_until(lambda: client.sent == ["2"])


def test_stop_leaves_an_unacknowledged_event_unsent(queue_and_client):
    queue, client = queue_and_client
    queue.put("puttbox/t/putt", "0")
    queue.link_up()
    wait_until(lambda: client.sent == ["0"])
    queue.put("puttbox/t/putt", "1")
    queue.stop()
    assert (client.sent, queue.unacknowledged) == (["0"], 2)
