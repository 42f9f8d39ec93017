"""The records that cross stage boundaries: frozen, slotted dataclasses, never tuples or dicts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
Outcome = Literal["MAKE", "MISS"]
PuttKind = Literal["HOLE", "CATCH", "RETURN", "TIMEOUT", "QUICK_PUTT"]
Lane = Literal["LEFT", "CENTER", "RIGHT", "RAMP", "UNKNOWN"]
Quadrant = Literal["TOP", "RIGHT", "LOW", "LEFT"]
# idle: no putt for the idle timeout; max_duration: too long; command: ended by an operator; shutdown: the
# service stopped; recovered: found in a journal at start-up; end_of_input: a recorded clip ended.
EndReason = Literal["idle", "max_duration", "command", "shutdown", "recovered", "end_of_input"]
CameraStatus = Literal["ok", "lost", "reconnecting"]
ServiceStatus = Literal["starting", "idle", "in_session", "degraded", "error", "stopping"]
PUTT_KINDS: tuple[PuttKind, ...] = ("HOLE", "CATCH", "RETURN", "TIMEOUT", "QUICK_PUTT")
LANES: tuple[Lane, ...] = ("LEFT", "CENTER", "RIGHT", "RAMP", "UNKNOWN")
QUADRANTS: tuple[Quadrant, ...] = ("TOP", "RIGHT", "LOW", "LEFT")


@dataclass(frozen=True, slots=True)
class Point:
    """A position in frame pixels."""

    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Frame:
    """One camera frame: BGR pixels and the time it was taken, in seconds on the source's clock."""

    index: int
    timestamp: float
    image: Image

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box in frame pixels."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def center(self) -> Point:
        return Point((self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2)

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    def iou(self, other: Box) -> float:
        """Intersection over union with another box."""
        ix = max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))
        iy = max(0.0, min(self.y2, other.y2) - max(self.y1, other.y1))
        inter = ix * iy
        union = self.width * self.height + other.width * other.height - inter
        return inter / union if union > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Detection:
    """One ball the detector found in a frame."""

    box: Box
    confidence: float
    class_id: int = 0


@dataclass(frozen=True, slots=True)
class Detections:
    """Everything the detector found in one frame."""

    frame_index: int
    timestamp: float
    items: tuple[Detection, ...]


@dataclass(frozen=True, slots=True)
class TrackedBall:
    """One ball in one frame: where it is, whether it was seen or only predicted."""

    track_id: int
    position: Point
    velocity: Point  # pixels per second
    box: Box | None  # the detection, None while bridged over a gap
    first_seen: float

    @property
    def seen(self) -> bool:
        return self.box is not None


@dataclass(frozen=True, slots=True)
class BallObservation:
    """Every tracked ball in one frame."""

    frame_index: int
    timestamp: float
    balls: tuple[TrackedBall, ...]


@dataclass(frozen=True, slots=True)
class PuttEvent:
    """One classified putt. Times are seconds on the frame source's clock.

    The Proof of Putt detail string is derived from the typed fields, never stored or parsed back.
    """

    kind: PuttKind
    start_time: float  # the ball left the mat
    time: float  # the putt was classified
    entry_lane: Lane
    exit_lane: Lane | None = None  # where the ball left the ramp: CATCH and RETURN only
    hole_quadrant: Quadrant | None = None  # HOLE only
    path: tuple[Point, ...] = ()

    def __post_init__(self) -> None:
        if (self.kind == "HOLE") != (self.hole_quadrant is not None):
            raise ValueError(f"a {self.kind} putt has hole quadrant {self.hole_quadrant}")
        if (self.kind in ("CATCH", "RETURN")) != (self.exit_lane is not None):
            raise ValueError(f"a {self.kind} putt has exit lane {self.exit_lane}")

    @property
    def outcome(self) -> Outcome:
        return "MAKE" if self.kind == "HOLE" else "MISS"

    @property
    def is_make(self) -> bool:
        return self.kind == "HOLE"

    @property
    def detail(self) -> str:
        """The Proof of Putt string, e.g. `MAKE - HOLE: TOP - CENTER`, `MISS - CATCH: LEFT - RIGHT`."""
        match self.kind:
            case "HOLE":
                return f"MAKE - HOLE: {self.hole_quadrant} - {self.entry_lane}"
            case "CATCH" | "RETURN":
                return f"MISS - {self.kind}: {self.entry_lane} - {self.exit_lane}"
            case "TIMEOUT":
                return f"MISS - TIMEOUT: {self.entry_lane}"
            case "QUICK_PUTT":
                return "MISS - QUICK PUTT"


@dataclass(frozen=True, slots=True)
class Session:
    """A finished putting session.

    `start_time` is the first putt's start on the source clock; adding `epoch_offset` gives UTC epoch seconds.
    """

    session_id: str
    device_id: str
    start_time: float
    end_time: float
    epoch_offset: float
    putts: tuple[PuttEvent, ...]
    end_reason: EndReason

    @property
    def started_at(self) -> float:
        """UTC epoch seconds of the start."""
        return self.start_time + self.epoch_offset

    @property
    def ended_at(self) -> float:
        """UTC epoch seconds of the end."""
        return self.end_time + self.epoch_offset

    @property
    def makes(self) -> int:
        return sum(putt.is_make for putt in self.putts)


@dataclass(frozen=True, slots=True)
class SessionProgress:
    """The open session as the status outlets show it."""

    session_id: str
    putts: int
    makes: int
    streak: int  # the current run of makes


@dataclass(frozen=True, slots=True)
class ServiceState:
    """What the running service is doing: the status outlets (systemd, state file, MQTT) publish this."""

    status: ServiceStatus
    camera: CameraStatus
    fps: float  # frames through the vision loop per second, recently
    inference_ms: float  # median detector time over recent frames it ran on
    gate_skipped: float  # share of recent frames on which the motion gate spared the detector
    session: SessionProgress | None
    putts: int  # since the service started
    sessions: int  # finished since the service started
    model: str  # file name
    model_sha256: str  # first 12 hex digits
    calibration: str  # file name
    config_hash: str  # first 12 hex digits of the effective settings' hash
    version: str
    device: str  # the box's human-readable name
    pid: int
    started_at: float  # UTC epoch seconds
    updated_at: float  # UTC epoch seconds
    uptime: float  # seconds, monotonic
    problems: tuple[str, ...] = ()  # conditions an operator must act on, one line each
    camera_outages: int = 0  # times the camera was lost since start, however briefly
    spool_pending: int = 0  # sessions waiting for the web API
    spool_dead: int = 0  # sessions set aside, each with its reason
    spool_bytes: int = 0
    upload: str = "disabled"  # idle, uploading, waiting, auth_failed or disabled
    last_upload_at: float | None = None  # UTC epoch seconds
    last_upload_result: str = ""
    calibration_drift: str = "unchecked"  # unchecked, none, followed (regions moved with the rig) or mismatch
    calibration_shift: tuple[float, float] | None = None  # pixels the rig moved since calibrating
    calibration_drift_detail: str = ""  # the last check's measurement, one line
    model_update: str = "off"  # off, downloading, waiting, ready, installed or rejected
    model_update_error: str = ""  # why the update was rejected, or why the last attempt failed
