"""Wiring: each settings group mapped onto the config of the stage it drives, and the frame-source registry.

`stage_configs` is the only function that reads `Settings` for the stages, and a test changes every setting in
turn to show that each one reaches some stage. The camera module knows no simulator: `sim://` is added to its
registry here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from daemon.delivery.sessions import SessionConfig
from daemon.delivery.spool import SpoolConfig
from daemon.delivery.uploader import UploadConfig
from daemon.outlets.mqtt import MqttConfig
from daemon.settings import Settings
from daemon.vision.camera import (
    CameraConfig,
    FrameSource,
    Opener,
    SourceKind,
    VideoFileSource,
    live_openers,
    source_kind,
)
from daemon.vision.classifier import ClassifierConfig
from daemon.vision.detector import DetectorConfig
from daemon.vision.motion_gate import MotionGateConfig
from daemon.vision.tracker import TrackerConfig


@dataclass(frozen=True, slots=True)
class StageConfigs:
    """Every stage's slice of the settings; `stage_configs` is the only place that fills it."""

    camera: CameraConfig
    gate: MotionGateConfig | None
    detector: DetectorConfig
    tracker: TrackerConfig
    classifier: ClassifierConfig
    sessions: SessionConfig
    calibration_file: Path
    device_name: str
    player_name: str  # the report's player fields come from the upload settings, not the device
    player_email: str
    state_dir: Path
    status_interval: float
    log_level: str
    spool: SpoolConfig
    upload: UploadConfig | None  # None: no upload URL, sessions wait in the spool
    mqtt: MqttConfig | None  # None: no broker host


def stage_configs(settings: Settings, state_dir: Path | None = None) -> StageConfigs:
    """Map each settings group onto the configs of the stages it drives (no setting is left unread)."""
    state = state_dir or settings.state.dir
    gate = settings.gate
    model = settings.model
    camera = settings.camera
    return StageConfigs(
        camera=CameraConfig(
            camera.source, camera.width, camera.height, camera.fps, camera.fourcc, camera.stall_seconds
        ),
        gate=MotionGateConfig(threshold=gate.threshold, min_pixels=gate.min_pixels, max_skip=gate.max_skip)
        if gate.enabled
        else None,
        detector=DetectorConfig(
            path=model.path,
            sha256=model.sha256,
            confidence=model.confidence,
            ball_class=model.ball_class,
            threads=model.threads,
        ),
        tracker=TrackerConfig(max_gap=settings.tracker.max_gap),
        classifier=ClassifierConfig(**settings.classifier.model_dump()),
        sessions=SessionConfig(
            settings.device.id,
            settings.session.idle_timeout,
            settings.session.max_duration,
            state / "journal",
        ),
        calibration_file=settings.calibration.file,
        device_name=settings.device.name,
        player_name=settings.upload.player_name,
        player_email=settings.upload.player_email,
        state_dir=state,
        status_interval=settings.state.status_interval,
        log_level=settings.log.level,
        spool=SpoolConfig(
            settings.spool.dir or state / "spool", settings.spool.max_bytes, settings.spool.keep_sent
        ),
        upload=upload_config(settings),
        mqtt=mqtt_config(settings),
    )


def mqtt_config(settings: Settings) -> MqttConfig | None:
    """The MQTT outlet's slice; None when no broker is set."""
    mqtt = settings.mqtt
    if not mqtt.host:
        return None
    return MqttConfig(
        host=mqtt.host, device_id=settings.device.id, port=mqtt.port, device_name=settings.device.name,
        topic_prefix=mqtt.topic_prefix, username=mqtt.username, password=mqtt.password, tls_ca=mqtt.tls_ca,
        tls_cert=mqtt.tls_cert, tls_key=mqtt.tls_key, keepalive=mqtt.keepalive,
        ha_discovery=mqtt.ha_discovery, commands=mqtt.commands,
    )  # fmt: skip


def upload_config(settings: Settings) -> UploadConfig | None:
    """The uploader's slice; the report's player fields come from here, not from the device name."""
    upload = settings.upload
    if upload.url is None:
        return None
    return UploadConfig(
        url=str(upload.url).rstrip("/"), profile=upload.api_profile, token=upload.token,
        player_id=upload.player_id, player_name=upload.player_name, player_email=upload.player_email,
        connect_timeout=upload.connect_timeout, read_timeout=upload.read_timeout,
        retry_max_delay=upload.retry_max_delay, send_csv=upload.send_csv, ca_bundle=upload.ca_bundle,
    )  # fmt: skip


def changed_stages(old: StageConfigs, new: StageConfigs) -> list[str]:
    """The names of the stage configs that differ."""
    return [f.name for f in fields(StageConfigs) if getattr(old, f.name) != getattr(new, f.name)]


def camera_openers() -> dict[SourceKind, Opener]:
    """The registry of frame sources: the camera's own kinds, and the simulator for `sim://`."""

    def simulator(config: CameraConfig) -> FrameSource:
        from daemon.sim.clip import SimulatedCamera  # noqa: PLC0415  # the simulator loads only when asked for

        return SimulatedCamera.from_url(config.source, config.width, config.height, config.fps)

    return {**live_openers(), "sim": simulator}


def replay_source(config: CameraConfig) -> FrameSource:
    """A finite source read frame by frame at the machine's speed: a video file in order, or `sim://`."""
    if source_kind(config.source) == "file":
        return VideoFileSource(Path(config.source.removeprefix("file://")))
    return camera_openers()[source_kind(config.source)](config)
