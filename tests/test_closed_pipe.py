"""Commands whose reader goes away (`| head`, `| grep -q`) end as SIGPIPE would, without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from daemon.closed_pipe import EXIT_CLOSED_PIPE, run_main
from tests.conftest import REPO

COMMANDS = {
    "putt-daemon": [str(REPO / ".venv" / "bin" / "putt-daemon"), "check-config"],
    "bench": [sys.executable, "-m", "bench.sim_speed", "--frames", "2", "--runs", "1"],
    "tool": [sys.executable, "-m", "tools.draft_labels", "{pictures}", "--out", "{out}"],
}


@pytest.mark.parametrize("kind", COMMANDS)
def test_output_into_a_pipe_nobody_reads(kind: str, cli_env: dict[str, str], tmp_path: Path) -> None:
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    cv2.imwrite(str(pictures / "mat.png"), np.full((240, 320, 3), 90, np.uint8))
    command = [a.format(pictures=pictures, out=tmp_path / "out") for a in COMMANDS[kind]]
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            command, stdout=write_end, stderr=subprocess.PIPE, text=True, env=cli_env, cwd=REPO, timeout=60,
            check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert done.returncode == EXIT_CLOSED_PIPE, done.stderr
    assert done.stderr == ""


def test_the_same_command_into_a_pipe_that_is_read(cli_env: dict[str, str]) -> None:
    done = subprocess.run(
        COMMANDS["putt-daemon"],
        capture_output=True,
        text=True,
        env=cli_env,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# settings from")


def test_a_broken_pipe_elsewhere_is_a_real_error() -> None:
    def writes_to_a_gone_child() -> int:
        raise BrokenPipeError("the child's stdin")

    with pytest.raises(BrokenPipeError, match="the child's stdin"):
        run_main(writes_to_a_gone_child)
