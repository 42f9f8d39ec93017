"""bench.detector_looks: the harder-looks row of bench.detector_accuracy, split by look."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.detector_accuracy import simulator_scores
from bench.detector_looks import FIRST_SEED, LOOK, LOOKS, per_clip, rows

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "models" / "ball.onnx"


def test_the_looks_split_the_harder_looks_row_of_the_accuracy_bench() -> None:
    table = rows(per_clip(MODEL, 120, 6))
    whole = simulator_scores(MODEL, 120, 6, FIRST_SEED, LOOK)
    count, every, rolling = table["every clip"]
    assert count == 6
    assert (every.truths, every.hits, every.false_alarms) == (
        whole["all"].truths, whole["all"].hits, whole["all"].false_alarms,
    )  # fmt: skip
    assert (rolling.truths, rolling.hits) == (whole["rolling"].truths, whole["rolling"].hits)
    assert every.centre_errors is not None
    assert sorted(every.centre_errors) == sorted(whole["all"].centre_errors or [])
    for look in LOOKS:
        on, off = table[f"{look} on"], table[f"{look} off"]
        assert on[0] + off[0] == 6
        assert on[1].truths + off[1].truths == every.truths
        assert on[1].hits + off[1].hits == every.hits
        assert on[1].false_alarms + off[1].false_alarms == every.false_alarms
    assert any(0 < table[f"{look} on"][0] < 6 for look in LOOKS)


def test_the_bench_prints_one_line_per_look(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bench.detector_looks", "--frames", "40", "--seeds", "4"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines()[2:]]
    assert names == ["every", *(look for look in LOOKS for _ in ("on", "off"))]
