"""Putt and session accuracy of `putt-daemon process` with the shipped model on unseen simulated clips.

    .venv/bin/python -m bench.putt_accuracy [--clips 10] [--sessions 2] [--putts 20] [--jobs 2]

Each clip has SESSIONS sessions of PUTTS putts (every outcome, occlusions, spare balls, lighting drift,
dropped frames), separated by idle gaps longer than the session idle timeout. Clips are rendered once into
`--work` and reused. Prints a confusion table of outcomes, then the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from daemon.sim.clip import ClipSpec, write_clip

REPO = Path(__file__).resolve().parents[1]
FIRST_SEED = 9000
START = "2026-01-01T00:00:00+00:00"
CLASSES = ("MAKE", "CATCH", "RETURN", "TIMEOUT", "QUICK PUTT", "(none)")


@dataclass
class ClipResult:
    """What one clip scored."""

    seed: int
    sessions_expected: list[int]
    sessions_found: list[int]
    pairs: list[tuple[str, str]]  # expected detail, found detail ("" when the putt was not found)
    extra: int  # putts found that match no simulated putt


def kind_of(detail: str) -> str:
    if not detail:
        return "(none)"
    if detail.startswith("MAKE"):
        return "MAKE"
    return next(k for k in ("CATCH", "RETURN", "TIMEOUT", "QUICK PUTT") if k in detail)


def render(work: Path, seed: int, sessions: int, putts: int) -> Path:
    folder = work / f"seed{seed}-{sessions}x{putts}"
    if not (folder / "truth.json").is_file():
        write_clip(ClipSpec(seed=seed, sessions=sessions, putts=putts), folder, progress=False)
    return folder


def score_clip(folder: Path, seed: int) -> ClipResult:
    out = folder / "reports"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUTT_")}
    command = [sys.executable, "-m", "daemon", "process", str(folder / "clip.mp4"), "--calibration",
               str(folder / "calibration.json"), "--out", str(out), "--start", START]  # fmt: skip
    subprocess.run(command, check=True, env=env, capture_output=True, cwd=REPO)
    truth = json.loads((folder / "truth.json").read_text())
    start = datetime.fromisoformat(START).timestamp()
    found: list[tuple[float, str]] = []
    sessions_found = []
    for report in sorted(out.glob("*.json")):
        data = json.loads(report.read_text())
        begin = datetime.fromisoformat(data["started_at"].replace("Z", "+00:00")).timestamp() - start
        sessions_found.append(len(data["putt_list"]))
        found += [
            (begin + row["Putt Time"], row["Putt Detailed Classification"]) for row in data["putt_list"]
        ]
    found.sort()
    pairs, used = [], set()
    for putt in truth["putts"]:
        lo, hi = putt["start_time"] - 0.5, putt["last_frame"] / truth["fps"] + 4.0
        match = next((i for i, (t, _) in enumerate(found) if i not in used and lo <= t <= hi), None)
        if match is not None:
            used.add(match)
        pairs.append((putt["detail"], found[match][1] if match is not None else ""))
    expected = [s["putts"] for s in truth["sessions"]]
    return ClipResult(seed, expected, sessions_found, pairs, len(found) - len(used))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--sessions", type=int, default=2)
    parser.add_argument("--putts", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "putt-bench")
    parser.add_argument("--render-only", action="store_true", help="render the clips and stop")
    args = parser.parse_args()
    seeds = range(FIRST_SEED, FIRST_SEED + args.clips)
    with ThreadPoolExecutor(args.jobs) as pool:
        folders = list(pool.map(lambda s: render(args.work, s, args.sessions, args.putts), seeds))
        if args.render_only:
            return 0
        results = list(pool.map(score_clip, folders, seeds))
    confusion: Counter[tuple[str, str]] = Counter()
    putts = outcome_right = detail_right = extra = 0
    sessions = sessions_exact = 0
    for result in results:
        extra += result.extra
        sessions += len(result.sessions_expected)
        if result.sessions_found == result.sessions_expected:
            sessions_exact += len(result.sessions_expected)
        for want, got in result.pairs:
            putts += 1
            confusion[(kind_of(want), kind_of(got))] += 1
            outcome_right += want.split(" ")[0] == got.split(" ")[0]
            detail_right += want == got
    print(f"putt accuracy: {len(results)} clips (seeds {seeds.start}-{seeds.stop - 1}), {sessions} sessions, "
          f"{putts} putts, through `putt-daemon process` with the shipped model")  # fmt: skip
    corner = "simulated / found"
    print(f"{corner:>18} " + " ".join(f"{c:>10}" for c in CLASSES))
    for want in CLASSES[:-1]:
        print(f"{want:>18} " + " ".join(f"{confusion[(want, got)]:10d}" for got in CLASSES))
    print(f"sessions with exact putt count and boundaries: {sessions_exact}/{sessions}")
    print(f"MAKE/MISS right: {outcome_right}/{putts} = {100 * outcome_right / putts:.2f}% (target >= 99%)")
    print(
        f"detailed string right: {detail_right}/{putts} = {100 * detail_right / putts:.2f}% (target >= 95%)"
    )
    print(f"putts found that were never simulated: {extra}")
    for result in results:
        for want, got in result.pairs:
            if want != got:
                print(f"  seed {result.seed}: simulated {want!r}, found {got!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
