"""`putt-daemon demo`: the main job end to end on a simulated rig, with no camera and no server.

Renders a short simulated session, runs the vision pipeline over it with the shipped model, and prints each
putt next to what really happened, then the session report.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from daemon.commands.process import print_result, process_video
from daemon.configuration import load_settings
from daemon.logs import set_level
from daemon.sim.clip import ClipSpec, write_clip


def demo_command(args: argparse.Namespace) -> int:
    """Entry point of `putt-daemon demo`."""
    loaded = load_settings(args.env_file)
    set_level(args.log_level or loaded.settings.log.level)
    with tempfile.TemporaryDirectory(prefix="putt-demo-") as scratch:
        out: Path = args.out or Path(scratch)
        clip = out / "clip"
        print(f"simulating {args.putts} putts (seed {args.seed}) -> {clip}")
        truth = write_clip(ClipSpec(seed=args.seed, putts=args.putts, default_rig=True), clip)
        process_args = argparse.Namespace(
            video=clip / "clip.mp4", calibration=clip / "calibration.json", out=out / "reports",
            annotate=None, start=datetime(2026, 1, 1, 9, tzinfo=UTC).timestamp(),
        )  # fmt: skip
        result = process_video(loaded.settings, process_args)
        print_result(result)
        expected = [p["detail"] for p in truth["putts"]]
        found = [p.detail for p in result.putts]
        print(f"\n{'#':>3}  {'simulated':32}  {'detected':32}")
        for number in range(max(len(expected), len(found))):
            want = expected[number] if number < len(expected) else "-"
            got = found[number] if number < len(found) else "-"
            print(f"{number + 1:>3}  {want:32}  {got:32}  {'ok' if want == got else 'DIFFERENT'}")
        right = sum(a == b for a, b in zip(expected, found, strict=False))
        print(f"{right} of {len(expected)} putts classified as simulated")
        for report in result.reports:
            data = json.loads(report.read_text())
            flat = {k: data[k] for k in ("total_putts", "total_makes", "make_percentage", "best_streak")}
            print(f"report {report.name}: {json.dumps(flat)}")
    return 0
