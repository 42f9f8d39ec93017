"""Settings: bad values give one report and exit 78, secrets stay hidden, precedence is as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daemon import configuration
from tests.conftest import REPO

LONG = "x" * 300

# One bad value for every setting; the test below fails when a setting is added without one.
BAD_VALUES = {
    "PUTT_DEVICE_ID": "has spaces",
    "PUTT_DEVICE_NAME": LONG,
    "PUTT_CAMERA_SOURCE": "ftp://camera.local/stream",
    "PUTT_CAMERA_WIDTH": "wide",
    "PUTT_CAMERA_HEIGHT": "100000",
    "PUTT_CAMERA_FPS": "-5",
    "PUTT_CAMERA_FOURCC": "TOOLONG",
    "PUTT_CAMERA_STALL_SECONDS": "0",
    "PUTT_GATE_ENABLED": "sometimes",
    "PUTT_GATE_THRESHOLD": "256",
    "PUTT_GATE_MIN_PIXELS": "0",
    "PUTT_GATE_MAX_SKIP": "-1",
    "PUTT_MODEL_PATH": "models/ball.pt",
    "PUTT_MODEL_SHA256": "abc123",
    "PUTT_MODEL_URL": "ftp://models.example.com/ball.onnx",
    "PUTT_MODEL_MAX_BYTES": "12",
    "PUTT_MODEL_CONFIDENCE": "1.5",
    "PUTT_MODEL_BALL_CLASS": " ",
    "PUTT_MODEL_THREADS": "0",
    "PUTT_MODEL_VERIFIER": "models/ball_verifier.pt",
    "PUTT_MODEL_VERIFIER_THRESHOLD": "1",
    "PUTT_CALIBRATION_FILE": "config/calibration.yaml",
    "PUTT_CALIBRATION_DRIFT_INTERVAL": "-1",
    "PUTT_CALIBRATION_DRIFT_THRESHOLD": "0",
    "PUTT_TRACKER_MAX_GAP": "-0.1",
    "PUTT_TRACKER_KEEP_CONFIDENCE": "0.01",
    "PUTT_CLASSIFIER_MAT_WINDOW": "0",
    "PUTT_CLASSIFIER_RETURN_DELAY": "later",
    "PUTT_CLASSIFIER_EXIT_TIMEOUT": "61",
    "PUTT_CLASSIFIER_PUTT_TIMEOUT": "nan",
    "PUTT_SESSION_IDLE_TIMEOUT": "1",
    "PUTT_SESSION_MAX_DURATION": "forever",
    "PUTT_STATE_DIR": "/etc/hostname",
    "PUTT_STATE_STATUS_INTERVAL": "0",
    "PUTT_SPOOL_DIR": "/etc/hostname",
    "PUTT_SPOOL_MAX_BYTES": "12",
    "PUTT_SPOOL_KEEP_SENT": "-1",
    "PUTT_UPLOAD_URL": "ftp://example.com",
    "PUTT_UPLOAD_API_PROFILE": "v9",
    "PUTT_UPLOAD_TOKEN": "two words",
    "PUTT_UPLOAD_PLAYER_ID": LONG,
    "PUTT_UPLOAD_PLAYER_NAME": LONG,
    "PUTT_UPLOAD_PLAYER_EMAIL": LONG,
    "PUTT_UPLOAD_CONNECT_TIMEOUT": "0",
    "PUTT_UPLOAD_READ_TIMEOUT": "soon",
    "PUTT_UPLOAD_RETRY_MAX_DELAY": "0",
    "PUTT_UPLOAD_SEND_CSV": "perhaps",
    "PUTT_UPLOAD_CA_BUNDLE": "/nonexistent/ca.pem",
    "PUTT_MQTT_HOST": "bad host!",
    "PUTT_MQTT_PORT": "70000",
    "PUTT_MQTT_USERNAME": LONG,
    "PUTT_MQTT_PASSWORD": LONG,
    "PUTT_MQTT_TLS_CA": "/nonexistent/ca.pem",
    "PUTT_MQTT_TLS_CERT": "/nonexistent/cert.pem",
    "PUTT_MQTT_TLS_KEY": "/nonexistent/key.pem",
    "PUTT_MQTT_TOPIC_PREFIX": "a/#",
    "PUTT_MQTT_KEEPALIVE": "1",
    "PUTT_MQTT_HA_DISCOVERY": "sometimes",
    "PUTT_MQTT_STATE_INTERVAL": "0.5",
    "PUTT_MQTT_COMMANDS": "2",
    "PUTT_MQTT_SNAPSHOT": "maybe",
    "PUTT_LOG_LEVEL": "loud",
}
SECRETS = {"PUTT_UPLOAD_TOKEN", "PUTT_MQTT_PASSWORD"}


def run_cli(*args: str, env: dict[str, str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_every_setting_has_a_bad_value_in_this_test() -> None:
    assert set(BAD_VALUES) == {field.env_name for field in configuration.setting_fields()}


def test_defaults_load_with_no_env_file_and_no_environment() -> None:
    loaded = configuration.load_settings()
    assert loaded.settings.camera.source == "0"
    assert loaded.settings.session.idle_timeout == 120.0
    assert loaded.unknown == ()


@pytest.mark.parametrize(("name", "value"), sorted(BAD_VALUES.items()))
def test_each_bad_value_exits_78_naming_the_field(name: str, value: str, cli_env: dict[str, str]) -> None:
    result = run_cli("check-config", env=cli_env | {name: value})
    assert result.returncode == 78, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line.strip() for line in result.stderr.splitlines() if line.startswith("  PUTT_")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{name}:"), result.stderr
    if name in SECRETS:
        assert value not in result.stderr
        assert "(got **********)" in lines[0]
    else:
        assert repr(value) in lines[0] or value in lines[0]
    assert result.stdout == ""


def test_several_bad_fields_are_reported_at_once(cli_env: dict[str, str]) -> None:
    bad = {"PUTT_GATE_THRESHOLD": "0", "PUTT_CAMERA_FPS": "fast", "PUTT_LOG_LEVEL": "chatty"}
    result = run_cli("check-config", env=cli_env | bad)
    assert result.returncode == 78
    reported = {
        line.strip().split(":")[0] for line in result.stderr.splitlines() if line.startswith("  PUTT_")
    }
    assert reported == set(bad)


def test_cross_field_rule_names_the_variable_to_set(cli_env: dict[str, str]) -> None:
    result = run_cli("check-config", env=cli_env | {"PUTT_UPLOAD_URL": "https://api.example.com"})
    assert result.returncode == 78
    assert "  PUTT_UPLOAD_TOKEN: required when PUTT_UPLOAD_URL is set" in result.stderr.splitlines()
    profile = {"PUTT_UPLOAD_TOKEN": "t0ken", "PUTT_UPLOAD_API_PROFILE": "upload-session"}
    result = run_cli("check-config", env=cli_env | {"PUTT_UPLOAD_URL": "https://api.example.com"} | profile)
    assert "  PUTT_UPLOAD_PLAYER_ID: required by PUTT_UPLOAD_API_PROFILE=upload-session" in result.stderr
    assert "t0ken" not in result.stdout + result.stderr


def test_a_token_is_never_printed(tmp_path: Path, cli_env: dict[str, str]) -> None:
    env_file = tmp_path / "putt.env"
    env_file.write_text("PUTT_UPLOAD_URL=https://api.example.com\nPUTT_UPLOAD_TOKEN=eyJ.secret-token.sig\n")
    result = run_cli("check-config", "--env-file", str(env_file), env=cli_env)
    assert result.returncode == 0, result.stderr
    assert "secret-token" not in result.stdout + result.stderr
    assert "PUTT_UPLOAD_TOKEN=**********" in result.stdout


def test_credentials_in_a_camera_url_are_never_printed(tmp_path: Path, cli_env: dict[str, str]) -> None:
    env_file = tmp_path / "putt.env"
    env_file.write_text("PUTT_CAMERA_SOURCE=rtsp://admin:hunter2@cam.local:554/stream\n")
    result = run_cli("check-config", "--env-file", str(env_file), env=cli_env)
    assert "hunter2" not in result.stdout + result.stderr
    assert "PUTT_CAMERA_SOURCE=rtsp://***@cam.local:554/stream" in result.stdout
    bad = run_cli("check-config", env=cli_env | {"PUTT_CAMERA_SOURCE": "ftp://admin:hunter2@cam.local/s"})
    assert bad.returncode == 78
    assert "hunter2" not in bad.stdout + bad.stderr


def test_environment_overrides_env_file(tmp_path: Path, cli_env: dict[str, str]) -> None:
    env_file = tmp_path / "putt.env"
    env_file.write_text("PUTT_GATE_THRESHOLD=20\nPUTT_CAMERA_FPS=25\n")
    result = run_cli("check-config", "--env-file", str(env_file), env=cli_env | {"PUTT_GATE_THRESHOLD": "40"})
    assert result.returncode == 0, result.stderr
    assert "PUTT_GATE_THRESHOLD=40" in result.stdout
    assert "PUTT_CAMERA_FPS=25.0" in result.stdout


def test_bad_value_in_env_file_is_reported(tmp_path: Path, cli_env: dict[str, str]) -> None:
    env_file = tmp_path / "putt.env"
    env_file.write_text("PUTT_SESSION_IDLE_TIMEOUT=soon\n")
    result = run_cli("check-config", "--env-file", str(env_file), env=cli_env)
    assert result.returncode == 78
    assert "PUTT_SESSION_IDLE_TIMEOUT:" in result.stderr
    assert "'soon'" in result.stderr


def test_missing_env_file_named_explicitly_is_an_error(tmp_path: Path, cli_env: dict[str, str]) -> None:
    result = run_cli("check-config", "--env-file", str(tmp_path / "absent.env"), env=cli_env)
    assert result.returncode == 78
    assert "--env-file: no such file" in result.stderr


def test_unknown_variables_are_reported_as_typos(tmp_path: Path, cli_env: dict[str, str]) -> None:
    env_file = tmp_path / "putt.env"
    env_file.write_text("PUTT_SESION_IDLE_TIMEOUT=60\n")
    result = run_cli("check-config", "--env-file", str(env_file), env=cli_env | {"PUTT_CAMERA_SORCE": "1"})
    assert result.returncode == 0
    assert (
        "PUTT_CAMERA_SORCE: not a setting, probably a typo; did you mean PUTT_CAMERA_SOURCE?" in result.stderr
    )
    assert "PUTT_SESION_IDLE_TIMEOUT: not a setting" in result.stderr
    assert "PUTT_CAMERA_SOURCE=0\n" in result.stdout


def test_unknown_variables_accompany_a_failed_report(cli_env: dict[str, str]) -> None:
    result = run_cli("check-config", env=cli_env | {"PUTT_CAMERA_FPS": "x", "PUTT_CAMERA_FSP": "25"})
    assert result.returncode == 78
    assert "PUTT_CAMERA_FSP: not a setting" in result.stderr


def test_empty_value_means_default(tmp_path: Path) -> None:
    env_file = tmp_path / "putt.env"
    env_file.write_text("PUTT_CAMERA_SOURCE=\nPUTT_GATE_THRESHOLD=\n")
    loaded = configuration.load_settings(env_file)
    assert loaded.settings.camera.source == "0"
    assert loaded.settings.gate.threshold == 16


def test_the_verifier_is_shipped_by_default_and_none_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert configuration.load_settings().settings.model.verifier == REPO / "models" / "ball_verifier.onnx"
    monkeypatch.setenv("PUTT_MODEL_VERIFIER", "None")
    assert configuration.load_settings().settings.model.verifier is None


def test_a_missing_verifier_is_named_by_check_config(tmp_path: Path, cli_env: dict[str, str]) -> None:
    missing = tmp_path / "verifier.onnx"
    result = run_cli("check-config", env=cli_env | {"PUTT_MODEL_VERIFIER": str(missing)})
    assert result.returncode == 78
    assert f"PUTT_MODEL_VERIFIER: {missing}: verifier model file not found" in result.stderr
    assert "# model: " in result.stdout  # the detector itself is fine
    assert "Traceback" not in result.stderr


def test_env_example_matches_the_settings() -> None:
    committed = (REPO / "config" / "putt-daemon.env.example").read_text()
    assert committed == configuration.env_example(), (
        "regenerate with: putt-daemon check-config --example > config/putt-daemon.env.example"
    )


def test_env_example_documents_every_variable_and_loads(tmp_path: Path) -> None:
    text = (REPO / "config" / "putt-daemon.env.example").read_text()
    for field in configuration.setting_fields():
        assert f"#{field.env_name}=" in text
    uncommented = tmp_path / "example.env"
    uncommented.write_text(
        "\n".join(line[1:] for line in text.splitlines() if line.startswith("#PUTT_")) + "\n"
    )
    loaded = configuration.load_settings(uncommented)
    assert loaded.unknown == ()
    assert loaded.settings.gate.threshold == 16
