"""Averaging two checkpoints: the result sits between them, weight by weight, and loads as a detector."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import REPO, build_weights


def state(path: Path) -> dict[str, Any]:
    import torch

    return dict(torch.load(path, map_location="cpu", weights_only=False)["model"].float().state_dict())


def test_average_takes_its_share_of_each_checkpoint(tmp_path: Path) -> None:
    first = build_weights(tmp_path / "first.pt", seed=1)
    second = build_weights(tmp_path / "second.pt", seed=2)
    out = tmp_path / "out" / "ball.pt"
    command = [
        sys.executable,
        "-m",
        "tools.average_weights",
        str(first),
        str(second),
        str(out),
        "--share",
        "0.25",
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    a, b, mixed = state(first), state(second), state(out)
    floats = [name for name, value in a.items() if value.is_floating_point()]
    assert len(floats) > 100
    for name in floats:
        expected = a[name] * 0.75 + b[name] * 0.25
        # Stored in half precision, as Ultralytics stores its checkpoints.
        assert (mixed[name] - expected).abs().max() <= 2e-3 * (1 + expected.abs().max()), name
    meta = json.loads((out.parent / "train_meta.json").read_text())
    assert sorted(meta["training"]["average_of"].values()) == [0.25, 0.75]


def test_a_share_outside_zero_to_one_is_refused(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "tools.average_weights",
        "a.pt",
        "b.pt",
        str(tmp_path / "c.pt"),
        "--share",
        "2",
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "--share must be between 0 and 1, not 2.0" in done.stderr
    assert not (tmp_path / "c.pt").exists()
