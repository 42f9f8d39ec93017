"""What a newcomer can type: every mistake is one clear line and a documented exit code, never a traceback.

The table runs each case as a real `python -m daemon` process in a fresh folder and checks its exit code,
its message, and that neither a traceback nor raw FFmpeg/OpenCV log lines reached the user. Hypothesis then
throws odd values at `simulate` (in-process, argparse level) and odd paths at `process` (subprocesses).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import pickle
import random
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.cli import main
from daemon.commands import arguments, simulate
from daemon.sim.clip import ClipSpec, write_clip
from daemon.sim.script import PuttRequest
from tests.conftest import REPO

DOCUMENTED = {0, 1, 2, 3, 65, 66, 73, 78}
QUIET = ("OPENCV_LOG_LEVEL", "OPENCV_FFMPEG_LOGLEVEL")
NOISE = ("Traceback", "moov atom", "[ WARN", "[h264", "[mov,", "findDecoder", "putt-export-")
REQUESTS = (PuttRequest("MAKE"), PuttRequest("MAKE"), PuttRequest("MAKE"))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every input the cases name: clips whole, damaged and cut short; files that are not what they claim."""
    root = tmp_path_factory.mktemp("inputs")
    square, four3, three = root / "square", root / "four3", root / "three putts"
    # The simulator's smallest frames and rate (a square: not the default calibration's shape), quick to make.
    write_clip(ClipSpec(seed=5, putts=1, width=420, height=420, fps=10.0), square, progress=False)
    write_clip(ClipSpec(seed=6, putts=1, width=560, height=420, fps=10.0), four3, progress=False)
    write_clip(ClipSpec(seed=21, requests=REQUESTS, default_rig=True), three, progress=False)
    data = (three / "clip.mp4").read_bytes()
    middle = len(data) // 2
    noise = random.Random(1).randbytes(300_000)
    damaged = root / "damaged" / "clip.mp4"
    damaged.parent.mkdir()
    damaged.write_bytes(data[: middle - 150_000] + noise + data[middle + 150_000 :])
    shutil.copy(three / "calibration.json", damaged.parent)
    truncated = root / "truncated.mp4"
    truncated.write_bytes(data[:middle])  # its index (moov) was at the end: nothing left to open
    faststart = root / "faststart.mp4"
    ffmpeg = [shutil.which("ffmpeg") or "ffmpeg", "-loglevel", "error", "-y", "-i", str(three / "clip.mp4")]
    subprocess.run([*ffmpeg, "-c", "copy", "-movflags", "+faststart", str(faststart)], check=True)
    cut = root / "cut.mp4"
    cut.write_bytes(faststart.read_bytes()[: faststart.stat().st_size // 2])  # index first: half of it plays
    text = root / "notes.txt"
    text.write_text("not a video\n")
    (root / "notes.pt").write_text("not weights either\n")
    (root / "dict.pt").write_bytes(pickle.dumps({"model": "no"}))
    (root / "empty.mp4").write_bytes(b"")
    return {
        "square": square, "four3": four3, "three": three, "damaged": damaged, "truncated": truncated,
        "cut": cut, "text": text, "notes_pt": root / "notes.pt", "dict_pt": root / "dict.pt",
        "empty": root / "empty.mp4", "repo_cal": REPO / "config" / "calibration.json",
    }  # fmt: skip


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # Without OpenCV's log switches: the CLI has to set them itself.
    clean = {k: v for k, v in env.items() if k not in QUIET}
    return subprocess.run(
        [sys.executable, "-m", "daemon", *args],
        capture_output=True, text=True, env=clean, cwd=cwd, timeout=300, check=False,
    )  # fmt: skip


def assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    """No traceback and no raw library log line anywhere in the output."""
    for text in NOISE:
        assert text not in result.stderr, result.stderr
        assert text not in result.stdout, result.stdout


@dataclass(frozen=True)
class Case:
    """A command line (placeholders: {tmp} and the `files` names), its exit code, what stderr/stdout say."""

    id: str
    line: str
    code: int
    err: tuple[str, ...] = ()
    out: tuple[str, ...] = ()

    def args(self, names: dict[str, str]) -> list[str]:
        """The arguments, split before the placeholders are filled so paths may hold spaces."""
        return [word.format(**names) for word in shlex.split(self.line)]


def case(id_: str, line: str, code: int, *err: str, out: str = "") -> Case:
    return Case(id_, line, code, err, (out,) if out else ())


SIM = "simulate --out {tmp}/s"
CAL = "--calibration {square}/calibration.json"
# fmt: off
CASES = [
    # 1. ranges, checked by argparse
    case("putts-0", f"{SIM} --putts 0", 2, "argument --putts: must be 1 to 1000 (got 0)"),
    case("putts-neg", f"{SIM} --putts=-3", 2, "argument --putts: must be 1 to 1000 (got -3)"),
    case("putts-word", f"{SIM} --putts ten", 2, "argument --putts: not a whole number: 'ten'"),
    case("sessions-0", f"{SIM} --sessions 0", 2, "argument --sessions: must be 1 to 100 (got 0)"),
    case("fps-0", f"{SIM} --fps 0", 2, "argument --fps: must be 10 to 120 (got 0)"),
    case("fps-nan", f"{SIM} --fps nan", 2, "argument --fps: must be 10 to 120 (got nan)"),
    case("size-10", f"{SIM} --width 10 --height 10", 2, "argument --width: must be 420 to 3840 (got 10)"),
    case("height-10", f"{SIM} --height 10", 2, "argument --height: must be 420 to 2160 (got 10)"),
    case("seed-neg", f"{SIM} --seed=-1", 2, "argument --seed: must be 0 to 4294967295 (got -1)"),
    case("images-0", "simulate --dataset {tmp}/d --images 0", 2, "argument --images: must be 1 to 1000000"),
    case("crop-2", "simulate --dataset {tmp}/d --crop-share 2", 2, "argument --crop-share: must be 0 to 1"),
    case("look-name", "simulate --dataset {tmp}/d --look putter=1", 2,
         "argument --look: must be LOOK=SHARE, LOOK one of channel, lookalike,", "(got putter=1)"),
    case("look-bare", "simulate --dataset {tmp}/d --look glare", 2, "argument --look: must be LOOK=SHARE"),
    case("look-2", "simulate --dataset {tmp}/d --look glare=2", 2, "argument --look: must be 0 to 1 (got 2)"),
    case("speed-2000", "simulate --dataset {tmp}/d --from-clips --min-speed 2000", 2,
         "argument --min-speed: must be 0 to 1000 (got 2000)"),
    case("speed-scenes", "simulate --dataset {tmp}/d --min-speed 200", 2, "--min-speed needs --from-clips"),
    case("putter-scenes", "simulate --dataset {tmp}/d --putter-frames", 2,
         "--putter-frames needs --from-clips"),
    case("speed-unreached", "simulate --dataset {tmp}/d --from-clips --images 2 --min-speed 900", 2,
         "--min-speed: no frame of 20 clips in a row has a ball at 900 px/s"),
    case("demo-putts-0", "demo --putts 0", 2, "argument --putts: must be 1 to 1000 (got 0)"),
    case("demo-putts-neg", "demo --putts=-2", 2, "argument --putts: must be 1 to 1000 (got -2)"),
    case("demo-seed-neg", "demo --seed=-1", 2, "argument --seed: must be 0 to 4294967295"),
    case("putts-dashes", f"{SIM} --putts=--", 2, "argument --putts: expected one value"),
    case("check-dashes", "calibrate --check=--", 2, "argument --check: expected one value"),
    case("imgsz-0", "export {notes_pt} --imgsz 0", 2, "argument --imgsz: must be 32 to 2048 (got 0)"),
    # 2. simulate's output folder, refused before any rendering
    case("sim-out-file", "simulate --out {text} --putts 1", 73, "output folder", "is not a folder"),
    case("sim-out-under-file", "simulate --out {text}/clip", 73, "cannot create the output folder"),
    case("sim-dataset-file", "simulate --dataset {text}", 73, "exists and is not a folder"),
    # 3. a calibration made for another frame shape; one beside the video that is not the one in use
    case("process-other-shape", "process {square}/clip.mp4 --out {tmp}/r", 78,
         "made for 640x480 frames, which cannot be scaled to 420x420 frames",
         "calibration.json beside the video differs from the calibration in use", "to use it: --calibration"),
    case("process-sibling", "process {four3}/clip.mp4 --out {tmp}/r", 0,
         "warning: ", "calibration.json beside the video differs", "to use it: --calibration", out="frames,"),
    # 4. damaged videos: the reports of what was read, then 65 naming the missing frames
    case("process-damaged", "process {damaged} --out {tmp}/r", 65,
         "clip.mp4: decoded ", " frames; missing frames ", out="reports in"),
    case("process-cut", "process {cut} --calibration '{three}/calibration.json' --out {tmp}/r", 65,
         "cut.mp4: decoded ", " frames; missing frames "),
    case("process-truncated", "process {truncated}", 65, "video file is not a readable video"),
    case("process-text", "process {text}", 65, "video file is not a readable video"),
    case("process-empty", "process {empty}", 65, "video file is not a readable video"),
    # 5. export of files that are not weights
    case("export-missing", "export {tmp}/best.pt", 66, "best.pt: no such weights file"),
    case("export-text", "export {notes_pt}", 65, "notes.pt: not Ultralytics weights"),
    case("export-pickle", "export {dict_pt}", 65, "dict.pt: not Ultralytics weights"),
    case("export-mp4", "export '{three}/clip.mp4'", 65, "clip.mp4: not Ultralytics weights"),
    # 6. outputs of process that cannot be written, refused before the first frame
    case("annotate-nowhere", f"process {{square}}/clip.mp4 {CAL} --annotate {{tmp}}/nowhere/a.mp4", 73,
         "nowhere/a.mp4: folder", "does not exist"),
    case("annotate-folder", f"process {{square}}/clip.mp4 {CAL} --annotate {{tmp}}", 73, "it is a folder"),
    case("process-out-file", f"process {{square}}/clip.mp4 {CAL} --out {{text}}", 73,
         "exists and is not a folder"),
    # 8. calibrate draws only when asked, and only where it can
    case("draw-nowhere", "calibrate --check {repo_cal} --draw {tmp}/no/c.png", 73, "/no does not exist"),
    case("draw-txt", "calibrate --check {repo_cal} --draw {tmp}/c.txt", 73, "not an image file name"),
    case("draw", "calibrate --check {repo_cal} --draw {tmp}/c.png", 0, out="regions drawn to"),
    case("image-missing", "calibrate --check {repo_cal} --image {tmp}/still.png", 66, "image file not found"),
    case("image-text", "calibrate --check {repo_cal} --image {text}", 65, "not a readable image"),
    case("image-shape", "calibrate --check {repo_cal} --image {square}/still.png", 78,
         "cannot be scaled to 420x420"),
    # 9. missing inputs
    case("process-missing", "process {tmp}/absent.mp4", 66, "video file not found"),
    case("start-10000", f"process {{square}}/clip.mp4 {CAL} --start 9999-12-31T23:59:59Z", 2,
         "--start must be a time from 1970 to 9998"),
    case("calibration-missing", "process {square}/clip.mp4 --calibration {tmp}/c.json", 78,
         "c.json: file not found"),
    case("calibrate-missing", "calibrate --check {tmp}/c.json", 78, "c.json: file not found"),
    # happy paths
    case("simulate", "simulate --out {tmp}/sim --putts 1 --width 420 --height 420 --fps 10", 0,
         out="to process it: putt-daemon process "),
    case("process", f"process {{square}}/clip.mp4 {CAL} --out {{tmp}}/r", 0, out="frames,"),
    case("calibrate-check", "calibrate --check {repo_cal}", 0, out="valid"),
    case("check-config", "check-config", 0, "# all good"),
]
# fmt: on


@pytest.fixture(scope="module")
def still(files: dict[str, Path]) -> Path:
    """A 420x420 camera still (for the calibrate case that needs one)."""
    path = files["square"] / "still.png"
    cv2.imwrite(str(path), np.zeros((420, 420, 3), np.uint8))
    return path


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_case_exits_documented_and_clean(
    case: Case, files: dict[str, Path], still: Path, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    args = case.args({k: str(v) for k, v in files.items()} | {"tmp": str(tmp_path)})
    config_before = sorted((REPO / "config").iterdir())
    result = run(args, tmp_path, cli_env)
    assert result.returncode == case.code, f"{args}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    for fragment in case.err:
        assert fragment in result.stderr, result.stderr
    for fragment in case.out:
        assert fragment in result.stdout, result.stdout
    assert_clean(result)
    assert sorted((REPO / "config").iterdir()) == config_before  # checking a calibration writes nothing
    if case.code not in (0, 65):
        assert not (tmp_path / "putt-reports").exists()  # a refused command leaves no folder behind
        assert not (tmp_path / "r").exists()
        assert not (tmp_path / "nowhere").exists()


def test_the_help_documents_every_exit_code_the_cases_use(cli_env: dict[str, str], tmp_path: Path) -> None:
    result = run(["--help"], tmp_path, cli_env)
    table = result.stdout.partition("exit codes:")[2]
    documented = {int(code) for code in re.findall(r"(?:^|\s)(\d{1,2})\s{2,}\S", table, re.MULTILINE)}
    assert documented == DOCUMENTED
    assert {case.code for case in CASES} <= documented


def test_simulate_prints_the_process_command_that_works(tmp_path: Path, cli_env: dict[str, str]) -> None:
    out = tmp_path / "my clips" / "it's here"  # quoting matters
    result = run(["simulate", "--out", str(out), "--putts", "1", "--width", "420", "--height", "420",
                  "--fps", "10", "--seed", "3"], tmp_path, cli_env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("to process it: "))
    command = shlex.split(line.removeprefix("to process it: "))
    assert command[:2] == ["putt-daemon", "process"]
    assert command[2:] == [str(out / "clip.mp4"), "--calibration", str(out / "calibration.json")]
    processed = run([*command[1:], "--out", str(tmp_path / "reports")], tmp_path, cli_env)
    assert processed.returncode == 0, processed.stderr
    assert "warning" not in processed.stderr
    assert_clean(processed)


def putt_times(stdout: str) -> list[tuple[str, str]]:
    """(time, detail) of each putt row in process's table."""
    return re.findall(r"^\s+\d+\s+(\d\d:\d\d\.\d\d)\s+\w+\s+(.+)$", stdout, re.MULTILINE)


def test_a_damaged_clip_keeps_the_true_times_of_the_putts_it_still_has(
    files: dict[str, Path], tmp_path: Path, cli_env: dict[str, str]
) -> None:
    calibration = str(files["three"] / "calibration.json")
    intact = run(["process", str(files["three"] / "clip.mp4"), "--calibration", calibration, "--out",
                  str(tmp_path / "intact")], tmp_path, cli_env)  # fmt: skip
    damaged = run(["process", str(files["damaged"]), "--calibration", calibration, "--out",
                   str(tmp_path / "damaged")], tmp_path, cli_env)  # fmt: skip
    assert intact.returncode == 0, intact.stderr
    assert damaged.returncode == 65, damaged.stderr
    whole, kept = putt_times(intact.stdout), putt_times(damaged.stdout)
    assert len(whole) == len(REQUESTS)
    assert kept, damaged.stdout
    assert len(kept) < len(whole)  # the damage hid a putt...
    assert set(kept) <= set(whole)  # ...and the others kept their times, those after the gap included
    assert kept[-1] == whole[-1]
    frames = json.loads((files["three"] / "truth.json").read_text())["frames"]
    (line,) = [x for x in damaged.stderr.splitlines() if x.startswith("putt-daemon: ")]
    match = re.fullmatch(
        rf"putt-daemon: .*clip\.mp4: decoded (\d+) of {frames} frames; missing frames (.+)", line
    )
    assert match is not None, line
    gaps = [tuple(map(int, part.split("-"))) if "-" in part else (int(part),) * 2
            for part in match[2].split(", ")]  # fmt: skip
    assert int(match[1]) + sum(last - first + 1 for first, last in gaps) == frames
    (report,) = (tmp_path / "damaged").glob("*.json")  # the report of what was read is written
    assert json.loads(report.read_text())["total_putts"] == len(kept)


# --- hypothesis: odd values


ODD_TEXT = st.sampled_from(["", " ", "-", "--", "0x10", "1e3", "1_000", " 7 ", "٣", "NaN", "-inf", "½"])
NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.integers(min_value=-5, max_value=5000).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=-1, max_value=200).map(str),
    st.text(max_size=6),
    ODD_TEXT,
)
RANGES: dict[str, arguments.Whole | arguments.Number] = {
    "--putts": arguments.PUTTS, "--sessions": arguments.SESSIONS, "--images": arguments.IMAGES,
    "--seed": arguments.SEED, "--width": arguments.WIDTH, "--height": arguments.HEIGHT,
    "--fps": arguments.FPS, "--crop-share": arguments.SHARE, "--pale-share": arguments.SHARE,
}  # fmt: skip


def in_range(text: str, kind: arguments.Whole | arguments.Number) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value) and kind.low <= value <= kind.high


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flag=st.sampled_from(sorted(RANGES)), value=NUMBERS, dataset=st.booleans())
def test_odd_simulate_values_are_usage_errors_or_accepted(
    flag: str, value: str, dataset: bool, files: dict[str, Path]
) -> None:
    # The target is a file: a value argparse accepts ends at the output check (73) before any rendering.
    target = ["--dataset" if dataset else "--out", str(files["text"])]
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    environ = {name: os.environ.get(name) for name in QUIET}
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(["simulate", *target, f"{flag}={value}"])
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else 1
    finally:
        root.handlers[:], root.level = handlers, level  # main() configured logging for a command line
        for name, before in environ.items():
            if before is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = before
    assert code in DOCUMENTED
    assert "Traceback" not in stderr.getvalue()
    if code == 2 and f"{flag}: not used with {target[0]}" in stderr.getvalue():
        # A good value for an option only the other target reads: refused by name, not ignored.
        assert flag[2:].replace("-", "_") in (simulate.CLIP_ONLY if dataset else simulate.DATASET_ONLY)
        assert in_range(value, RANGES[flag]), value
    elif code == 2:
        assert f"argument {flag}: " in stderr.getvalue()
    else:
        assert code == 73, stderr.getvalue()
        assert in_range(value, RANGES[flag]), value


NO_NUL = st.characters(blacklist_characters="\x00")  # no command line can carry one
# `--start=--` is left out: argparse (3.11) stores [] for it, and process's arguments do not refuse that yet.
START = st.one_of(
    st.text(NO_NUL, max_size=12).filter(lambda text: text != "--"),
    st.sampled_from(["2026-03-01T10:00Z", "9999-12-31T23:59Z", "0001-01-01"]),
)
ODD_PROCESS = st.fixed_dictionaries({
    "video": st.sampled_from(["absent", "text", "empty", "folder", "square", "truncated"]),
    "calibration": st.sampled_from([None, "absent", "text", "folder", "own"]),
    "out": st.sampled_from([None, "text", "under-text"]),
    "start": st.one_of(st.none(), START),
})  # fmt: skip


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(odd=ODD_PROCESS)
def test_odd_process_arguments_exit_documented_and_clean(
    odd: dict[str, str | None], files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory,
    cli_env: dict[str, str],
) -> None:  # fmt: skip
    where = tmp_path_factory.mktemp("odd")
    paths = {
        "absent": where / "absent.mp4", "text": files["text"], "empty": files["empty"], "folder": where,
        "square": files["square"] / "clip.mp4", "truncated": files["truncated"],
        "own": files["square"] / "calibration.json", None: where / "r", "under-text": files["text"] / "r",
    }  # fmt: skip
    args = ["process", str(paths[odd["video"]]), "--out", str(paths[odd["out"]])]
    if odd["calibration"] is not None:
        args += ["--calibration", str(paths[odd["calibration"]])]
    if odd["start"] is not None:
        args.append(f"--start={odd['start']}")
    result = run(args, where, cli_env)
    assert result.returncode in DOCUMENTED
    assert_clean(result)
    if result.returncode != 0:
        assert result.stderr.strip(), "a failure says why"
