"""`python -m bench.pipeline --quick`: every row of the pipeline-cost table still comes out."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

ROWS = (
    "pipeline frames/s, busy clip, gate on",
    "pipeline frames/s, busy clip, gate off",
    "run CPU % of a core, idle, gate on, raw",
    "run CPU % of a core, idle, gate on, net of sim",
    "run CPU % of a core, idle, gate off, raw",
    "run CPU % of a core, idle, gate off, net of sim",
    "run CPU % of a core, busy, gate on, raw",
    "run CPU % of a core, busy, gate on, net of sim",
    "run CPU % of a core, busy, gate off, raw",
    "run CPU % of a core, busy, gate off, net of sim",
    "CPU s per hour of a putting session",
    "CPU s per hour, baseline / ours",
    "RSS at READY, MB",
    "RSS at READY, net of sim, MB",
    "RSS after soak, net of sim, MB",
    "RSS growth over soak, MB",
    "start to READY=1, s",
)


@pytest.mark.timeout(150)
def test_quick_run_prints_every_row_with_a_number() -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("PUTT_")}
    result = subprocess.run(
        [sys.executable, "-m", "bench.pipeline", "--quick"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=140, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    for label in ROWS:
        (line,) = [line for line in lines if f"  {label} " in line]
        ours = line.split(label, 1)[1].split()[0]
        assert ours[0] in "+-0123456789", f"{label}: no number in {line!r}"
