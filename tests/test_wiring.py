"""Settings reach the stages: every setting changes what `stage_configs` hands some stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon import configuration
from daemon.service import changed_stages, stage_configs
from daemon.settings import Settings

# Another valid value for every setting; the first test fails when a setting is added without one.
OTHER_VALUES = {
    "PUTT_DEVICE_ID": "box-7",
    "PUTT_DEVICE_NAME": "Garage mat",
    "PUTT_CAMERA_SOURCE": "/dev/video2",
    "PUTT_CAMERA_WIDTH": "1280",
    "PUTT_CAMERA_HEIGHT": "720",
    "PUTT_CAMERA_FPS": "60",
    "PUTT_CAMERA_FOURCC": "YUYV",
    "PUTT_CAMERA_STALL_SECONDS": "9",
    "PUTT_GATE_ENABLED": "false",
    "PUTT_GATE_THRESHOLD": "30",
    "PUTT_GATE_MIN_PIXELS": "5",
    "PUTT_GATE_MAX_SKIP": "2.5",
    "PUTT_MODEL_PATH": "/opt/models/other.onnx",
    "PUTT_MODEL_SHA256": "a" * 64,
    "PUTT_MODEL_URL": "https://models.example.com/v2/ball.onnx",
    "PUTT_MODEL_MAX_BYTES": "2000000",
    "PUTT_MODEL_CONFIDENCE": "0.6",
    "PUTT_MODEL_BALL_CLASS": "golf ball",
    "PUTT_MODEL_THREADS": "2",
    "PUTT_MODEL_VERIFIER": "/opt/models/other_verifier.onnx",
    "PUTT_MODEL_VERIFIER_THRESHOLD": "0.3",
    "PUTT_CALIBRATION_FILE": "/etc/putt-daemon/other.json",
    "PUTT_CALIBRATION_DRIFT_INTERVAL": "60",
    "PUTT_CALIBRATION_DRIFT_THRESHOLD": "8",
    "PUTT_TRACKER_MAX_GAP": "1.0",
    "PUTT_TRACKER_KEEP_CONFIDENCE": "0.3",
    "PUTT_CLASSIFIER_MAT_WINDOW": "2",
    "PUTT_CLASSIFIER_RETURN_DELAY": "0.5",
    "PUTT_CLASSIFIER_EXIT_TIMEOUT": "4",
    "PUTT_CLASSIFIER_PUTT_TIMEOUT": "9",
    "PUTT_SESSION_IDLE_TIMEOUT": "300",
    "PUTT_SESSION_MAX_DURATION": "3600",
    "PUTT_STATE_DIR": "/srv/putt",
    "PUTT_STATE_STATUS_INTERVAL": "5",
    "PUTT_SPOOL_DIR": "/srv/spool",
    "PUTT_SPOOL_MAX_BYTES": "2000000",
    "PUTT_SPOOL_KEEP_SENT": "5",
    "PUTT_UPLOAD_URL": "https://api.example.com",
    "PUTT_UPLOAD_API_PROFILE": "upload-session",
    "PUTT_UPLOAD_TOKEN": "other-token",
    "PUTT_UPLOAD_PLAYER_ID": "42",
    "PUTT_UPLOAD_PLAYER_NAME": "Pat",
    "PUTT_UPLOAD_PLAYER_EMAIL": "pat@example.com",
    "PUTT_UPLOAD_CONNECT_TIMEOUT": "9",
    "PUTT_UPLOAD_READ_TIMEOUT": "19",
    "PUTT_UPLOAD_RETRY_MAX_DELAY": "60",
    "PUTT_UPLOAD_SEND_CSV": "false",
    "PUTT_UPLOAD_CA_BUNDLE": "/etc/hostname",
    "PUTT_MQTT_HOST": "broker.lan",
    "PUTT_MQTT_PORT": "8883",
    "PUTT_MQTT_USERNAME": "box",
    "PUTT_MQTT_PASSWORD": "secret",
    "PUTT_MQTT_TLS_CA": "/etc/hostname",
    "PUTT_MQTT_TLS_CERT": "/etc/hostname",
    "PUTT_MQTT_TLS_KEY": "/etc/hostname",
    "PUTT_MQTT_TOPIC_PREFIX": "garage/mat",
    "PUTT_MQTT_KEEPALIVE": "30",
    "PUTT_MQTT_HA_DISCOVERY": "false",
    "PUTT_MQTT_STATE_INTERVAL": "10",
    "PUTT_MQTT_COMMANDS": "true",
    "PUTT_MQTT_SNAPSHOT": "true",
    "PUTT_LOG_LEVEL": "DEBUG",
}
# The upload group is checked with a working upload in place, so each of its fields can change alone.
UPLOAD_BASE = {
    "PUTT_UPLOAD_URL": "https://api.example.net",
    "PUTT_UPLOAD_TOKEN": "token",
    "PUTT_UPLOAD_PLAYER_ID": "7",
}
# The model update settings are checked with an update in place (a URL needs its hash).
MODEL_UPDATE_BASE = {
    "PUTT_MODEL_URL": "https://models.example.net/ball.onnx",
    "PUTT_MODEL_SHA256": "b" * 64,
}
# Settings whose change must leave the GATE config alone once the gate is off are checked with it on.
NEEDS_GATE_ON = {"PUTT_GATE_THRESHOLD", "PUTT_GATE_MIN_PIXELS", "PUTT_GATE_MAX_SKIP"}


def test_every_setting_has_another_value_here() -> None:
    assert set(OTHER_VALUES) == {field.env_name for field in configuration.setting_fields()}


@pytest.mark.parametrize("name", sorted(OTHER_VALUES))
def test_every_setting_reaches_a_stage(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PUTT_STATE_DIR", str(tmp_path))
    if name.startswith("PUTT_UPLOAD_"):
        for key, value in UPLOAD_BASE.items():
            monkeypatch.setenv(key, value)
    if name.startswith("PUTT_MQTT_"):
        monkeypatch.setenv("PUTT_MQTT_HOST", "broker.example")
    if name in ("PUTT_MODEL_URL", "PUTT_MODEL_MAX_BYTES"):
        for key, value in MODEL_UPDATE_BASE.items():
            monkeypatch.setenv(key, value)
    if name in ("PUTT_MQTT_TLS_CERT", "PUTT_MQTT_TLS_KEY"):
        monkeypatch.setenv("PUTT_MQTT_TLS_CERT", "/etc/hosts")
        monkeypatch.setenv("PUTT_MQTT_TLS_KEY", "/etc/hosts")
    base = stage_configs(Settings())
    monkeypatch.setenv(name, OTHER_VALUES[name] if name != "PUTT_STATE_DIR" else str(tmp_path / "other"))
    changed = stage_configs(Settings())
    assert changed_stages(base, changed), f"{name} changes no stage config"


def test_the_shipped_model_and_calibration_are_found_from_any_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    configs = stage_configs(Settings())
    assert configs.detector.path.is_file()
    assert configs.calibration_file.is_file()


def test_state_folder_follows_systemd_then_the_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from daemon.paths import default_state_dir

    assert default_state_dir({"STATE_DIRECTORY": "/var/lib/putt-daemon:/x"}, euid=1000) == Path(
        "/var/lib/putt-daemon"
    )
    assert default_state_dir({}, euid=0) == Path("/var/lib/putt-daemon")
    assert default_state_dir({"XDG_STATE_HOME": str(tmp_path)}, euid=1000) == tmp_path / "putt-daemon"
    assert default_state_dir({"HOME": "/home/pat"}, euid=1000) == Path("/home/pat/.local/state/putt-daemon")


def test_the_detector_reports_down_to_the_keep_threshold_and_the_tracker_starts_at_the_model_s(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PUTT_STATE_DIR", str(tmp_path))
    configs = stage_configs(Settings())
    assert (configs.detector.confidence, configs.tracker.start_confidence) == (0.25, 0.45)
    monkeypatch.setenv("PUTT_TRACKER_KEEP_CONFIDENCE", "0.6")  # above the model's: one threshold for both
    configs = stage_configs(Settings())
    assert (configs.detector.confidence, configs.tracker.start_confidence) == (0.45, 0.45)
