"""`python -m bench.mqtt_latency --quick`: every row of the MQTT cost table still comes out, with a number."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

ROWS = (
    "putts timed, live",
    "putt classified -> subscriber, live, median, ms",
    "putt classified -> subscriber, live, p95, ms",
    "putts timed, replay",
    "putt classified -> subscriber, replay, median, ms",
    "putt classified -> subscriber, replay, p95, ms",
    "service CPU s per hour, MQTT off (baseline)",
    "service CPU s per hour, MQTT on",
    "extra CPU s per hour for MQTT, service",
    "CPU s per hour, outlet alone, idle process",
    "CPU s per hour, outlet alone, outlet fed",
    "extra CPU s per hour for MQTT, outlet alone",
)


@pytest.mark.timeout(300)
def test_quick_run_prints_every_row_with_a_number() -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("PUTT_")}
    result = subprocess.run(
        [sys.executable, "-m", "bench.mqtt_latency", "--quick"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    for label in ROWS:
        (line,) = [line for line in lines if f"  {label} " in line]
        value = line.split(label, 1)[1].split()[0]
        assert value[0] in "+-0123456789", f"{label}: no number in {line!r}"
