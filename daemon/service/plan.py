"""What a command asks of the service: live or replay, the sinks and observers around it, the clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from daemon.models import EndReason, Frame, PuttEvent, Session
from daemon.settings import Settings
from daemon.sinks import EventSink, SessionSink
from daemon.vision.pipeline import PipelineStep

Mode = Literal["live", "replay"]


class Lifecycle(Protocol):
    """The service manager's view of the service (systemd's notify protocol)."""

    def ready(self) -> None: ...
    def heartbeat(self) -> None: ...
    def reloading(self) -> None: ...
    def reloaded(self) -> None: ...
    def stopping(self) -> None: ...


class FrameObserver(Protocol):
    """Sees every frame and what the pipeline made of it (the annotated video of `process`)."""

    def add(self, frame: Frame, step: PipelineStep) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Clock:
    """Wall time for reports, monotonic time for everything that measures an interval."""

    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic


@dataclass(frozen=True)
class ServicePlan:
    """How a command runs the service: the feed's mode and what it adds around the stages."""

    mode: Mode
    calibration_file: Path | None = None  # None: the setting
    reports_dir: Path | None = None  # None: <state dir>/reports; unused when delivering
    deliver: bool = False  # the spool and uploader take the sessions instead of a report folder
    mqtt: bool = False  # publish to the broker the settings name, if any
    state_dir: Path | None = None  # None: the setting
    epoch_offset: float = 0.0  # replay: UTC epoch seconds of frame time 0
    event_sinks: tuple[EventSink, ...] = ()
    session_sinks: tuple[SessionSink, ...] = ()
    observers: tuple[FrameObserver, ...] = ()
    lifecycle: Lifecycle | None = None
    reload_settings: Callable[[], Settings] | None = None  # re-reads the env file; raises ConfigError
    env_file: Path | None = None  # watched for replacement (live mode)
    clock: Clock = field(default_factory=Clock)
    first_frame_wait: float = 30.0  # live: READY after the first frame, or after this long without one


@dataclass(frozen=True, slots=True)
class ServiceResult:
    """What a run produced; a live run keeps no putts or sessions, only their counts in the state."""

    putts: tuple[PuttEvent, ...]
    sessions: tuple[Session, ...]
    reports: tuple[Path, ...]
    frames: int
    end_reason: EndReason
    calibration_drift: str = ""  # the last calibration drift check's line, "" when none ran
