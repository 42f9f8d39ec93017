"""`putt-daemon demo`: the real service on the simulated rig (`sim://`), with no camera, server or broker.

The service (the same `Service` as `run`) reads a simulated camera whose script is known, prints each putt as
it is classified, then the putts next to what was simulated and the session report. It stops by itself when
the simulated session ends, as fast as the machine allows on the simulator's clock (`--realtime`: at camera
speed). Reports and journals stay in `--out`.
"""

from __future__ import annotations

import argparse
import json
import sys

from daemon.commands.arguments import check_output_folder
from daemon.commands.console import ConsoleEvents
from daemon.configuration import LoadedSettings
from daemon.service import Service, ServicePlan, ServiceResult
from daemon.sim.clip import SimulatedCamera


def _compare(expected: list[str], found: list[str]) -> None:
    print(f"\n{'#':>3}  {'simulated':32}  {'detected':32}")
    for number in range(max(len(expected), len(found))):
        want = expected[number] if number < len(expected) else "-"
        got = found[number] if number < len(found) else "-"
        print(f"{number + 1:>3}  {want:32}  {got:32}  {'ok' if want == got else 'DIFFERENT'}")
    right = sum(a == b for a, b in zip(expected, found, strict=False))
    print(f"{right} of {len(expected)} putts classified as simulated")


def _print_reports(result: ServiceResult) -> None:
    for report in result.reports:
        data = json.loads(report.read_text())
        flat = {k: data[k] for k in ("total_putts", "total_makes", "make_percentage", "best_streak")}
        print(f"report {report}: {json.dumps(flat)}")


def demo_command(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    """Entry point of `putt-daemon demo`."""
    settings = loaded.settings
    out = check_output_folder(args.out or settings.state.dir / "demo")
    # The simulated camera's own frame size and rate, whatever PUTT_CAMERA_* says about the real one.
    camera = settings.camera.model_copy(update={"width": 640, "height": 480, "fps": 30.0})
    url = f"sim://?seed={args.seed}&putts={args.putts}&realtime={int(args.realtime)}"
    # The script the service's camera will play, for its calibration and the simulated outcomes.
    script = SimulatedCamera.from_url(url, camera.width, camera.height, camera.fps).script
    calibration = out / "calibration.json"
    script.scene.calibration.save(calibration)
    print(f"simulating {args.putts} putts (seed {args.seed}) on {url}; reports -> {out}", flush=True)
    plan = ServicePlan(
        mode="replay", mqtt=True, calibration_file=calibration, reports_dir=out / "reports", state_dir=out,
        event_sinks=(ConsoleEvents(sys.stdout, time_origin=None),),
    )  # fmt: skip
    result = Service(settings.model_copy(update={"camera": camera.model_copy(update={"source": url})}), plan)
    outcome = result.run()
    _compare([p.detail for p in script.putts], [p.detail for p in outcome.putts])
    _print_reports(outcome)
    return 0
