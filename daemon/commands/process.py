"""`putt-daemon process VIDEO`: the service on a recorded clip, as fast as the CPU allows.

Times come from the clip's frame positions, so the result does not depend on how fast the machine is. The
output folder is checked before the first frame, so a bad `--out` never costs a processed clip. Prints each
putt as it is classified and a summary per session; the report pairs go to `--out`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from daemon.commands.annotate import Annotator
from daemon.commands.console import ConsoleEvents
from daemon.configuration import LoadedSettings
from daemon.errors import InputMissingError, OutputError
from daemon.service import Service, ServicePlan, ServiceResult
from daemon.vision.calibration import load_calibration
from daemon.vision.camera import VideoFileSource


def check_output_folder(folder: Path) -> Path:
    """Create FOLDER (and its parents) now, or raise OutputError saying why it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create the output folder {folder}: {err.strerror or err}") from err
    if not folder.is_dir():
        raise OutputError(f"output folder {folder} exists and is not a folder")
    return folder.resolve()


def _epoch_offset(video: Path, start: float | None) -> tuple[float, float]:
    """UTC epoch seconds of the clip's first frame, and its frame rate."""
    source = VideoFileSource(video)
    try:
        fps, frames = source.fps, source.frame_count
    finally:
        source.close()
    if start is not None:
        return start, fps
    return video.stat().st_mtime - frames / fps, fps


def process_command(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    """Entry point of `putt-daemon process`."""
    video: Path = args.video
    if not video.is_file():
        raise InputMissingError(f"video file not found: {video}")
    out = check_output_folder(args.out)
    if args.annotate is not None and not args.annotate.parent.is_dir():
        raise OutputError(f"cannot write {args.annotate}: folder {args.annotate.parent} does not exist")
    settings = loaded.settings
    calibration_file: Path = args.calibration or settings.calibration.file
    offset, fps = _epoch_offset(video, args.start)
    observers: tuple[Annotator, ...] = ()
    if args.annotate is not None:
        observers = (Annotator(args.annotate, load_calibration(calibration_file), fps),)
    source = settings.camera.model_copy(update={"source": str(video.resolve())})
    with tempfile.TemporaryDirectory(prefix="putt-process-") as scratch:
        plan = ServicePlan(
            mode="replay", calibration_file=calibration_file, reports_dir=out, state_dir=Path(scratch),
            epoch_offset=offset, event_sinks=(ConsoleEvents(sys.stdout),), observers=observers,
        )  # fmt: skip
        result = Service(settings.model_copy(update={"camera": source}), plan).run()
    print_summary(result, out)
    return 0


def print_summary(result: ServiceResult, out: Path) -> None:
    """One closing line, and where the reports are."""
    print(f"{result.frames} frames, {len(result.putts)} putts, {len(result.sessions)} sessions")
    if result.reports:
        print(f"reports in {out}: " + ", ".join(path.name for path in result.reports))
