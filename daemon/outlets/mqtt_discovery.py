"""Status outlet helper: the MQTT outlet's payloads, above all the Home Assistant discovery messages.

Contract: every function here is pure; `daemon.outlets.mqtt` publishes what they return. `putt_json`,
`session_json` (the report's flat totals) and `problem_events` (one `error` event per problem condition that
appeared or cleared; a condition is its line with numbers masked, so a growing count stays one condition)
build the event payloads; `state_json` the state's, and `state_looks` what of it an operator watches change
(the state without its meters). `discovery_messages` gives one
retained config message per entity, all on one device (`puttbox_<device_id>`), each reading the box's
retained state topic with a `value_template` and tied to its availability topic, so Home Assistant greys the
entities out when the Last Will says `offline`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from daemon.delivery.reports import report_json
from daemon.models import PuttEvent, ServiceState, Session

if TYPE_CHECKING:
    from daemon.delivery.reports import SessionReport

AVAILABLE, NOT_AVAILABLE = "online", "offline"
SESSION_FIELDS = (
    "device_id", "total_putts", "total_makes", "total_misses", "make_percentage", "best_streak",
    "session_duration_seconds", "started_at", "ended_at", "end_reason",
)  # fmt: skip
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def putt_json(event: PuttEvent, session_id: str) -> str:
    """The `putt` event's payload."""
    return json.dumps(
        {
            "session_id": session_id, "outcome": event.outcome, "detail": event.detail, "kind": event.kind,
            "entry_lane": event.entry_lane, "exit_lane": event.exit_lane,
            "hole_quadrant": event.hole_quadrant, "start_time": event.start_time, "time": event.time,
        }
    )  # fmt: skip


def session_json(session: Session, report: SessionReport) -> str:
    """The `session` event's payload: the report's flat totals."""
    flat = report_json(report)
    return json.dumps({"session_id": session.session_id} | {key: flat[key] for key in SESSION_FIELDS})


def state_json(state: ServiceState) -> str:
    """The retained `state` payload."""
    return json.dumps(dataclasses.asdict(state))


def state_looks(state: ServiceState) -> ServiceState:
    """STATE without the meters that move on every frame: a change here is published at once."""
    return dataclasses.replace(state, fps=0.0, inference_ms=0.0, gate_skipped=0.0, updated_at=0.0, uptime=0.0)


def problem_lines(problems: tuple[str, ...]) -> dict[str, str]:
    """Each problem's condition (its line with numbers masked) -> the line."""
    return {_NUMBER.sub("#", line): line for line in problems}


def problem_events(previous: Mapping[str, str], current: Mapping[str, str]) -> list[str]:
    """The `error` payloads for conditions that appeared in CURRENT or cleared since PREVIOUS."""
    appeared = [(c, line, True) for c, line in current.items() if c not in previous]
    cleared = [(c, line, False) for c, line in previous.items() if c not in current]
    return [
        json.dumps({"condition": c, "active": active, "message": line})
        for c, line, active in appeared + cleared
    ]


@dataclass(frozen=True, slots=True)
class DiscoveryTarget:
    """Where one box publishes and how Home Assistant should name it."""

    device_id: str
    device_name: str
    topic_prefix: str  # e.g. puttbox/<device_id>
    discovery_prefix: str  # e.g. homeassistant
    version: str


@dataclass(frozen=True, slots=True)
class Entity:
    """One Home Assistant entity read from the state JSON."""

    component: str  # sensor or binary_sensor
    object_id: str
    name: str
    template: str
    extra: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class RetainedMessage:
    """A retained message to publish: its topic and JSON text."""

    topic: str
    payload: str


_IN_SESSION = "value_json.session"
ENTITIES: tuple[Entity, ...] = (
    Entity("sensor", "status", "Status", "{{ value_json.status }}"),
    Entity("sensor", "putts", "Session putts", f"{{{{ {_IN_SESSION}.putts if {_IN_SESSION} else 0 }}}}"),
    Entity("sensor", "makes", "Session makes", f"{{{{ {_IN_SESSION}.makes if {_IN_SESSION} else 0 }}}}"),
    Entity(
        "sensor",
        "make_percentage",
        "Make %",
        f"{{{{ (100 * {_IN_SESSION}.makes / {_IN_SESSION}.putts) | round(1) "
        f"if {_IN_SESSION} and {_IN_SESSION}.putts else 0 }}}}",
        (("unit_of_measurement", "%"), ("state_class", "measurement")),
    ),
    Entity("sensor", "streak", "Streak", f"{{{{ {_IN_SESSION}.streak if {_IN_SESSION} else 0 }}}}"),
    Entity("sensor", "spool_pending", "Sessions waiting for upload", "{{ value_json.spool_pending }}"),
    Entity(
        "sensor",
        "last_upload",
        "Last upload",
        "{{ as_datetime(value_json.last_upload_at) if value_json.last_upload_at else None }}",
        (("device_class", "timestamp"),),
    ),
    Entity(
        "binary_sensor",
        "camera",
        "Camera",
        "{{ 'ON' if value_json.camera == 'ok' else 'OFF' }}",
        (("payload_on", "ON"), ("payload_off", "OFF"), ("device_class", "connectivity")),
    ),
)


def node_id(device_id: str) -> str:
    """The Home Assistant node and device identifier of a box."""
    return f"puttbox_{device_id}"


def discovery_messages(target: DiscoveryTarget) -> list[RetainedMessage]:
    """Every entity's retained config message for TARGET."""
    node = node_id(target.device_id)
    device = {
        "identifiers": [node],
        "name": target.device_name,
        "manufacturer": "putt-daemon",
        "model": "Putting mat tracker",
        "sw_version": target.version,
    }
    availability = f"{target.topic_prefix}/availability"
    messages = []
    for entity in ENTITIES:
        config: dict[str, object] = {
            "unique_id": f"{node}_{entity.object_id}",
            "object_id": f"{node}_{entity.object_id}",
            "name": entity.name,
            "state_topic": f"{target.topic_prefix}/state",
            "value_template": entity.template,
            # Home Assistant rejects a config holding both `availability_topic` and `availability`.
            "availability_topic": availability,
            "payload_available": AVAILABLE,
            "payload_not_available": NOT_AVAILABLE,
            "device": device,
            **dict(entity.extra),
        }
        topic = f"{target.discovery_prefix}/{entity.component}/{node}/{entity.object_id}/config"
        messages.append(RetainedMessage(topic, json.dumps(config)))
    return messages
