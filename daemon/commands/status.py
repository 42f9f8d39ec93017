"""`putt-daemon status`: what the running service is doing, read from its state file.

Contract: reads the state file (`daemon.outlets.statefile.read_state`) and prints its fields as aligned
`label  value` lines, or the JSON itself with `--json`. Exits 0 when the service is running and its file is
fresh, and 3 (as `systemctl status` does for an inactive unit) when there is no state file, it is stale, or
the process that wrote it is gone; the reason goes to stderr as `putt-daemon status: <problem>`, after
whatever the last known state was.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from daemon.configuration import LoadedSettings
from daemon.outlets.statefile import STATE_FILE, read_state

EX_OK, EX_NOT_RUNNING = 0, 3
UNKNOWN = "?"


def add_status_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `status` command's options to PARSER."""
    parser.add_argument("--json", action="store_true", help="print the state file's JSON as it is")


def format_duration(seconds: float) -> str:
    """SECONDS as `42 s`, `5 min 07 s`, `2 h 03 min` or `3 d 04 h`."""
    total = max(int(seconds), 0)
    minutes, secs = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours:02d} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def _text(state: dict[str, object], key: str) -> str:
    value = state.get(key)
    return UNKNOWN if value is None or value == "" else str(value)


def _number(state: dict[str, object], key: str) -> float | None:
    value = state.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _formatted(value: float | None, template: str) -> str:
    return UNKNOWN if value is None else template.format(value)


def _uptime(state: dict[str, object]) -> str:
    uptime = _number(state, "uptime")
    return UNKNOWN if uptime is None else format_duration(uptime)


def _session_line(state: dict[str, object]) -> str:
    session = state.get("session")
    if not isinstance(session, dict):
        return "none open"
    putts, makes, streak = session.get("putts"), session.get("makes"), session.get("streak")
    return f"{session.get('session_id')}: {putts} putts, {makes} makes, streak {streak}"


def _camera_line(state: dict[str, object]) -> str:
    outages = _number(state, "camera_outages")
    if not outages:
        return _text(state, "camera")
    return f"{_text(state, 'camera')} (lost {outages:.0f} {'time' if outages == 1 else 'times'} since start)"


def _uploads_line(state: dict[str, object]) -> str:
    pending, dead, upload = state.get("spool_pending"), state.get("spool_dead"), _text(state, "upload")
    return f"{pending} waiting, {dead} set aside; uploader {upload.replace('_', ' ')}"


def _last_upload_line(state: dict[str, object], now: float) -> str:
    at, result = _number(state, "last_upload_at"), _text(state, "last_upload_result")
    if at is None:
        return "none yet"
    return f"{format_duration(max(now - at, 0.0))} ago: {result}"


def _optional_rows(state: dict[str, object]) -> list[tuple[str, str]]:
    """Rows shown only when they have something to say."""
    rows = []
    drift = _text(state, "calibration_drift")
    if drift not in {"unchecked", UNKNOWN}:
        detail = _text(state, "calibration_drift_detail")
        rows.append(("drift", drift if detail == UNKNOWN else f"{drift} ({detail})"))
    update = _text(state, "model_update")
    if update not in {"off", UNKNOWN}:
        error = _text(state, "model_update_error")
        rows.append(("model fetch", update if error == UNKNOWN else f"{update}: {error}"))
    return rows


def status_lines(state: dict[str, object], age: float | None) -> list[tuple[str, str]]:
    """The `label, value` rows `status` prints for STATE, last updated AGE seconds ago."""
    problems = state.get("problems")
    problem_list = [str(p) for p in problems] if isinstance(problems, list) else []
    rows = [
        ("status", _text(state, "status").replace("_", " ")),
        ("camera", _camera_line(state)),
        ("fps", _formatted(_number(state, "fps"), "{:.1f}")),
        ("inference", _formatted(_number(state, "inference_ms"), "{:.1f} ms")),
        ("motion gate", _formatted(_number(state, "gate_skipped"), "{:.0%} of frames skipped")),
        ("session", _session_line(state)),
        ("since start", f"{_text(state, 'putts')} putts, {_text(state, 'sessions')} sessions"),
        ("model", f"{_text(state, 'model')} (sha256 {_text(state, 'model_sha256')[:12]})"),
        ("calibration", _text(state, "calibration")),
        *_optional_rows(state),
        ("uploads", _uploads_line(state)),
        ("last upload", _last_upload_line(state, time.time())),
        ("config hash", _text(state, "config_hash")[:12]),
        ("version", _text(state, "version")),
        ("pid", _text(state, "pid")),
        ("uptime", _uptime(state)),
        ("updated", UNKNOWN if age is None else f"{format_duration(age)} ago"),
    ]
    rows += [("problems" if i == 0 else "", problem) for i, problem in enumerate(problem_list)]
    return rows


def status_command(args: argparse.Namespace, state_file: Path) -> int:
    """Print the service's state from STATE_FILE; 0 when it is running and fresh, else 3."""
    reading = read_state(state_file, time.time())
    if reading.state is not None:
        if args.json:
            print(json.dumps(reading.state, indent=2))
        else:
            rows = status_lines(reading.state, reading.age)
            width = max(len(label) for label, _ in rows)
            for label, value in rows:
                print(f"{label:<{width}}  {value}")
    if reading.problem is not None:
        print(f"putt-daemon status: {reading.problem}", file=sys.stderr)
        return EX_NOT_RUNNING
    return EX_OK


def status_from_settings(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    """Entry point of `putt-daemon status`: the state file under the configured state folder."""
    return status_command(args, loaded.settings.state.dir / STATE_FILE)
