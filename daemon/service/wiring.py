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
from daemon.service.model_update import ModelUpdateConfig, installed_model
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
from daemon.vision.drift import DriftConfig
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
    drift: DriftConfig
    device_name: str
    player_name: str  # the report's player fields come from the upload settings, not the device
    player_email: str
    state_dir: Path
    status_interval: float
    log_level: str
    spool: SpoolConfig
    upload: UploadConfig | None  # None: no upload URL, sessions wait in the spool
    mqtt: MqttConfig | None  # None: no broker host
    model_update: ModelUpdateConfig | None  # None: no model URL


def stage_configs(settings: Settings, state_dir: Path | None = None) -> StageConfigs:
    """Map each settings group onto the configs of the stages it drives (no setting is left unread)."""
    state = state_dir or settings.state.dir
    gate = settings.gate
    model = settings.model
    camera = settings.camera
    update = model_update_config(settings)
    model_path, model_sha256 = model_file(settings, update)
    return StageConfigs(
        camera=CameraConfig(
            camera.source, camera.width, camera.height, camera.fps, camera.fourcc, camera.stall_seconds
        ),
        gate=MotionGateConfig(threshold=gate.threshold, min_pixels=gate.min_pixels, max_skip=gate.max_skip)
        if gate.enabled
        else None,
        detector=DetectorConfig(
            path=model_path,
            sha256=model_sha256,
            # Down to the tracker's keep threshold: weaker sightings carry on a followed ball.
            confidence=min(model.confidence, settings.tracker.keep_confidence),
            ball_class=model.ball_class,
            threads=model.threads,
            verifier=model.verifier,
            verifier_threshold=model.verifier_threshold,
        ),
        tracker=TrackerConfig(max_gap=settings.tracker.max_gap, start_confidence=model.confidence),
        classifier=ClassifierConfig(**settings.classifier.model_dump()),
        sessions=SessionConfig(
            settings.device.id,
            settings.session.idle_timeout,
            settings.session.max_duration,
            state / "journal",
        ),
        calibration_file=settings.calibration.file,
        drift=DriftConfig(
            interval=settings.calibration.drift_interval, threshold=settings.calibration.drift_threshold
        ),
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
        model_update=update,
    )


def model_update_config(settings: Settings) -> ModelUpdateConfig | None:
    """The model updater's slice; None when no model URL is set.

    Downloads live in the box's own state folder even when a command runs with another (`process`, `demo`),
    so a replay on the box runs the model the box runs.
    """
    model = settings.model
    if model.url is None:
        return None
    folder = settings.state.dir / "models"
    return ModelUpdateConfig(str(model.url), model.sha256.lower(), folder, model.max_bytes)


def model_file(settings: Settings, update: ModelUpdateConfig | None) -> tuple[Path, str]:
    """The model to run and the sha256 it must have: a downloaded model once accepted, else PUTT_MODEL_PATH.

    With a model URL, PUTT_MODEL_SHA256 names the download, so PUTT_MODEL_PATH runs unchecked until it is in.
    """
    if update is None:
        return settings.model.path, settings.model.sha256
    installed = installed_model(update)
    if installed is not None:
        return installed, update.sha256
    return settings.model.path, ""


def mqtt_config(settings: Settings) -> MqttConfig | None:
    """The MQTT outlet's slice; None when no broker is set."""
    mqtt = settings.mqtt
    if not mqtt.host:
        return None
    return MqttConfig(
        host=mqtt.host, device_id=settings.device.id, port=mqtt.port, device_name=settings.device.name,
        topic_prefix=mqtt.topic_prefix, username=mqtt.username, password=mqtt.password, tls_ca=mqtt.tls_ca,
        tls_cert=mqtt.tls_cert, tls_key=mqtt.tls_key, keepalive=mqtt.keepalive,
        state_interval=mqtt.state_interval, ha_discovery=mqtt.ha_discovery, commands=mqtt.commands,
        snapshots=mqtt.snapshot,
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
