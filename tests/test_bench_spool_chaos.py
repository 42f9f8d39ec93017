"""`python -m bench.spool_chaos --quick`: every row of the chaos table comes out, nothing lost or corrupt."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

ROWS = (
    "produced",
    "delivered (distinct)",
    "duplicates",
    "lost",
    "corrupt",
    "dead-lettered",
    "kills",
    "drain time after recovery, s",
)


@pytest.mark.timeout(180)
def test_quick_run_prints_every_row_and_loses_nothing() -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("PUTT_")}
    result = subprocess.run(
        [sys.executable, "-m", "bench.spool_chaos", "--quick"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=170, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    values: dict[str, float] = {}
    for label in ROWS:
        (line,) = [line for line in result.stdout.splitlines() if line.startswith(f"  {label} ")]
        value = line[len(label) + 2 :].split()[0]
        values[label] = float(value)  # a ValueError here: the row has no number
    assert values["lost"] == 0, result.stdout
    assert values["corrupt"] == 0, result.stdout
    assert values["produced"] == 40, result.stdout
