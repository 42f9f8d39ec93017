"""Settings: every knob the daemon has, read from `PUTT_*` environment variables and an env file.

Each group is a nested model named for the stage it configures, and the environment name is
`PUTT_<GROUP>_<FIELD>` (for example `PUTT_MQTT_PORT`), so `service.py` hands each stage only its own slice.
Real environment variables override the env file. Nothing here reads `os.environ` at import.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from daemon.paths import default_state_dir, shipped_file

ENV_PREFIX = "PUTT_"
DEFAULT_ENV_FILE = Path("/etc/putt-daemon/putt-daemon.env")
CAMERA_SCHEMES = frozenset({"rtsp", "rtsps", "http", "https", "sim", "file"})
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def _default_device_id() -> str:
    host = socket.gethostname().split(".")[0].lower()
    cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in host).strip("-_")
    return cleaned or "putt-box"


class _Group(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)


class DeviceSettings(_Group):
    """Who this box is."""

    id: str = Field(
        default_factory=_default_device_id,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$",
        description="Device id used in session ids and MQTT topics (default: the hostname).",
    )
    name: str = Field("Putting mat", min_length=1, max_length=80, description="Human-readable device name.")


class CameraSettings(_Group):
    """Where frames come from."""

    source: str = Field(
        "0",
        min_length=1,
        description="Camera: an index (0), a /dev/video path, a video file, an rtsp:// or http(s):// URL, "
        "or sim://?seed=S&putts=M for the built-in simulator.",
    )

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        scheme, sep, _ = value.partition("://")
        if sep and scheme.lower() not in CAMERA_SCHEMES:
            raise ValueError(
                f"unknown source scheme {scheme!r}; use one of {', '.join(sorted(CAMERA_SCHEMES))}"
            )
        return value

    width: int = Field(640, ge=160, le=3840, description="Requested frame width in pixels.")
    height: int = Field(480, ge=120, le=2160, description="Requested frame height in pixels.")
    fps: float = Field(30.0, gt=0, le=240, description="Requested frames per second.")
    fourcc: str = Field(
        "MJPG", pattern=r"^[A-Za-z0-9 ]{4}$|^$", description="Four-character codec asked of a USB camera."
    )
    stall_seconds: float = Field(
        5.0, ge=0.5, le=600, description="Seconds without a frame before the camera is lost and reopened."
    )


class GateSettings(_Group):
    """The motion gate that spares the detector while nothing moves."""

    enabled: bool = Field(True, description="Skip the detector on frames where nothing in the rig moved.")
    threshold: int = Field(16, ge=1, le=255, description="Grey levels a pixel must change by to count.")
    min_pixels: int = Field(2, ge=1, le=10000, description="Changed pixels (at 1/4 size) that make a motion.")
    max_skip: float = Field(3.0, gt=0, le=60, description="Seconds after which the detector runs anyway.")


class ModelSettings(_Group):
    """The ball detector."""

    path: Path = Field(
        default_factory=lambda: shipped_file("models/ball.onnx"),
        description="ONNX model file (default: the model shipped with the package).",
    )
    sha256: str = Field(
        "",
        pattern=r"^$|^[0-9a-fA-F]{64}$",
        description="Expected sha256 of the model file, refused at start if it differs (empty: unchecked); "
        "with PUTT_MODEL_URL, the sha256 of the model to download instead.",
    )
    url: AnyHttpUrl | None = Field(
        None,
        description="Model update: an .onnx to fetch in the background, with its sidecar at the same URL "
        "ending .json; once verified it replaces the running model and is kept in <state folder>/models "
        "(empty: no updates).",
    )
    max_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024 * 1024,
        le=1024 * 1024 * 1024,
        description="Largest model download accepted, in bytes.",
    )

    @field_validator("path")
    @classmethod
    def _onnx_suffix(cls, value: Path) -> Path:
        if value.suffix.lower() != ".onnx":
            raise ValueError("expected an .onnx file")
        return value

    confidence: float = Field(
        0.45,
        gt=0,
        lt=1,
        description="Minimum detection confidence (0.45: best precision, see models/README.md).",
    )
    ball_class: str = Field(
        "ball", pattern=r"^\S(.*\S)?$", description="Class name of the ball in the model."
    )
    threads: int = Field(1, ge=1, le=16, description="ONNX Runtime intra-op threads.")
    verifier: Path | None = Field(
        default_factory=lambda: shipped_file("models/ball_verifier.onnx"),
        description="Patch classifier that takes a second look at each detection and drops what is no "
        "ball (default: the one shipped with the package; 'none': no second look).",
    )
    verifier_threshold: float = Field(
        0.02,
        gt=0,
        lt=1,
        description="A detection the verifier gives a lower chance of being a ball is dropped "
        "(see models/README.md).",
    )

    @field_validator("verifier", mode="before")
    @classmethod
    def _verifier_none(cls, value: object) -> object:
        return None if isinstance(value, str) and value.strip().lower() == "none" else value

    @field_validator("verifier")
    @classmethod
    def _verifier_onnx_suffix(cls, value: Path | None) -> Path | None:
        if value is not None and value.suffix.lower() != ".onnx":
            raise ValueError("expected an .onnx file, or 'none'")
        return value

    @model_validator(mode="after")
    def _url_needs_a_hash(self) -> ModelSettings:
        if self.url is None:
            return self
        if not (self.url.path or "").lower().endswith(".onnx"):
            raise ValueError("PUTT_MODEL_URL: the path must end in .onnx (the sidecar: the same URL, .json)")
        if not self.sha256:
            raise ValueError("PUTT_MODEL_SHA256: required when PUTT_MODEL_URL is set")
        return self


class CalibrationSettings(_Group):
    """Where the mat's regions are."""

    file: Path = Field(
        default_factory=lambda: shipped_file("config/calibration.json"),
        description="Calibration JSON (Proof of Putt format; default: the simulated rig's).",
    )
    drift_interval: float = Field(
        300.0,
        ge=0,
        le=86400,
        description="Seconds between checks, made while the scene is still, that the camera has not moved "
        "since calibrating (0: only at start).",
    )
    drift_threshold: float = Field(
        4.0, gt=0, le=200, description="Pixels the rig may move in the frame before it counts as drift."
    )

    @field_validator("file")
    @classmethod
    def _json_suffix(cls, value: Path) -> Path:
        if value.suffix.lower() != ".json":
            raise ValueError("expected a .json file")
        return value


class TrackerSettings(_Group):
    """Following balls from frame to frame."""

    max_gap: float = Field(
        0.5, ge=0, le=5, description="Seconds a ball may be hidden (putter, feet) and keep its track."
    )
    keep_confidence: float = Field(
        0.25,
        ge=0.05,
        le=1,
        description="Lowest detection confidence that carries on a ball already followed (a new ball needs "
        "PUTT_MODEL_CONFIDENCE).",
    )


class ClassifierSettings(_Group):
    """The putt rules' timings, in seconds (Proof of Putt defaults)."""

    mat_window: float = Field(
        1.0, gt=0, le=10, description="A ball on the ramp starts a putt if it was on the mat this recently."
    )
    return_delay: float = Field(
        0.25, ge=0, le=5, description="A putt's ball back on the mat after this long is a MISS - RETURN."
    )
    exit_timeout: float = Field(
        3.0, gt=0, le=60, description="A ball gone from the ramp this long without an outcome is a timeout."
    )
    putt_timeout: float = Field(
        8.0, gt=0, le=120, description="Longest a putt may stay undecided (a ball resting on the ramp)."
    )


class SessionSettings(_Group):
    """When a putting session begins and ends."""

    idle_timeout: float = Field(
        120.0, ge=5, le=3600, description="Seconds without a putt that end a session."
    )
    max_duration: float = Field(
        7200.0, ge=60, le=86400, description="Seconds after which a session is closed regardless."
    )


class StateSettings(_Group):
    """Where the daemon keeps what must survive a restart."""

    dir: Path = Field(
        default_factory=lambda: default_state_dir(os.environ),
        description="State folder: journals, reports, the state file ($STATE_DIRECTORY under systemd, "
        "/var/lib/putt-daemon for root, ~/.local/state/putt-daemon otherwise).",
    )

    @field_validator("dir")
    @classmethod
    def _not_a_file(cls, value: Path) -> Path:
        if value.exists() and not value.is_dir():
            raise ValueError("exists and is not a folder")
        return value

    status_interval: float = Field(
        2.0, ge=0.5, le=60, description="Seconds between rewrites of the state file read by `status`."
    )


class SpoolSettings(_Group):
    """The durable on-disk queue of finished sessions waiting for the web API."""

    dir: Path | None = Field(None, description="Queue folder (empty: <state folder>/spool).")

    @field_validator("dir")
    @classmethod
    def _not_a_file(cls, value: Path | None) -> Path | None:
        if value is not None and value.exists() and not value.is_dir():
            raise ValueError("exists and is not a folder")
        return value

    max_bytes: int = Field(
        512 * 1024 * 1024,
        ge=1024 * 1024,
        description="Disk budget of the queue; uploaded, then dead-lettered files go first, pending never.",
    )
    keep_sent: int = Field(200, ge=0, le=100000, description="Uploaded reports kept on disk for reference.")


class UploadSettings(_Group):
    """The web API that receives sessions."""

    url: AnyHttpUrl | None = Field(
        None, description="Base URL of the web API (empty: keep sessions on disk)."
    )
    api_profile: Literal["sessions-upload", "upload-session"] = Field(
        "sessions-upload",
        description="Endpoint: sessions-upload (POST /api/sessions/upload, the flat report) or "
        "upload-session (POST /api/upload-session, what the Proof of Putt desktop used).",
    )
    token: SecretStr = Field(SecretStr(""), description="Bearer token (JWT) for the API.")

    @field_validator("token")
    @classmethod
    def _header_safe(cls, value: SecretStr) -> SecretStr:
        if any(ch.isspace() or not ch.isprintable() for ch in value.get_secret_value()):
            raise ValueError("must not contain spaces or control characters")
        return value

    player_id: str = Field("", max_length=80, description="Player id the sessions belong to.")
    player_name: str = Field("", max_length=120, description="Player name written into each report.")
    player_email: str = Field("", max_length=254, description="Player e-mail written into each report.")
    connect_timeout: float = Field(5.0, gt=0, le=120, description="Seconds to wait for a connection.")
    read_timeout: float = Field(30.0, gt=0, le=600, description="Seconds to wait for a response.")
    retry_max_delay: float = Field(
        300.0, ge=1, le=86400, description="Cap in seconds on the back-off between upload attempts."
    )
    send_csv: bool = Field(True, description="Send the CSV report along with the JSON.")
    ca_bundle: FilePath | None = Field(
        None, description="CA bundle to verify a private server with (empty: the system's; always verified)."
    )

    @model_validator(mode="after")
    def _url_needs_credentials(self) -> UploadSettings:
        # Messages name the variable to set, not the group the rule sits on.
        if self.url is not None and not self.token.get_secret_value():
            raise ValueError("PUTT_UPLOAD_TOKEN: required when PUTT_UPLOAD_URL is set")
        if self.url is not None and self.api_profile == "upload-session" and not self.player_id:
            raise ValueError("PUTT_UPLOAD_PLAYER_ID: required by PUTT_UPLOAD_API_PROFILE=upload-session")
        return self


class MqttSettings(_Group):
    """The MQTT broker that receives the box's availability, state, putts and sessions."""

    host: str = Field(
        "",
        max_length=253,
        pattern=r"^[A-Za-z0-9.:\[\]_-]*$",
        description="Broker host name (empty: MQTT off).",
    )
    port: int = Field(1883, ge=1, le=65535, description="Broker port.")
    username: str = Field("", max_length=256, description="Broker user name.")
    password: SecretStr = Field(SecretStr(""), max_length=256, description="Broker password.")
    tls_ca: FilePath | None = Field(None, description="CA file; setting it turns TLS on.")
    tls_cert: FilePath | None = Field(None, description="Client certificate for mutual TLS.")
    tls_key: FilePath | None = Field(None, description="Client key for mutual TLS.")
    topic_prefix: str = Field(
        "", pattern=r"^$|^[^#+\s]*[^#+\s/]$", description="Topic prefix (empty: puttbox/<device id>)."
    )
    keepalive: int = Field(60, ge=5, le=3600, description="Seconds between MQTT keep-alive pings.")
    ha_discovery: bool = Field(True, description="Publish Home Assistant discovery messages.")
    state_interval: float = Field(
        30.0,
        ge=1,
        le=3600,
        description="Seconds between re-sends of the retained state on top of each change "
        "(in steps of PUTT_STATE_STATUS_INTERVAL).",
    )
    commands: bool = Field(
        False, description="Accept commands on <prefix>/cmd/...: session/start, session/end, state, snapshot."
    )
    snapshot: bool = Field(
        False, description="Let the snapshot command publish a camera picture (it shows the room)."
    )

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> MqttSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            missing = "PUTT_MQTT_TLS_KEY" if self.tls_key is None else "PUTT_MQTT_TLS_CERT"
            raise ValueError(f"{missing}: required with the other half of the client certificate")
        return self


class LogSettings(_Group):
    """How much the daemon says."""

    level: LogLevel = Field("INFO", description="Log level: DEBUG, INFO, WARNING, ERROR or CRITICAL.")

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        if isinstance(value, str) and value.upper() in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            return value.upper()
        return value


class Settings(BaseSettings):
    """All of the daemon's settings, one group per stage."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        case_sensitive=False,
    )

    device: DeviceSettings = Field(default_factory=DeviceSettings)
    camera: CameraSettings = CameraSettings()
    gate: GateSettings = GateSettings()
    model: ModelSettings = Field(default_factory=ModelSettings)
    calibration: CalibrationSettings = Field(default_factory=CalibrationSettings)
    tracker: TrackerSettings = TrackerSettings()
    classifier: ClassifierSettings = ClassifierSettings()
    session: SessionSettings = SessionSettings()
    state: StateSettings = Field(default_factory=StateSettings)
    spool: SpoolSettings = SpoolSettings()
    upload: UploadSettings = UploadSettings()
    mqtt: MqttSettings = MqttSettings()
    log: LogSettings = LogSettings()
