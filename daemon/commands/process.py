"""`putt-daemon process VIDEO`: the service on a recorded clip, as fast as the CPU allows.

Times come from the clip's frame positions, so the result does not depend on how fast the machine is. The
video, the calibration (against the video's frame size) and the output folders are checked before the first
frame, so a bad argument never costs a processed clip and a failed check leaves no folder behind. Prints each
putt as it is classified and a summary per session; the report pairs go to `--out`. A damaged video is read
past its gaps; the reports of what was read are written, then the command fails (65) naming the frames that
never decoded.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from daemon.commands.annotate import Annotator
from daemon.commands.arguments import check_output_folder
from daemon.commands.console import ConsoleEvents
from daemon.configuration import LoadedSettings
from daemon.errors import CalibrationError, InputDataError, InputMissingError, OutputError
from daemon.models import Frame
from daemon.service import FrameObserver, Service, ServicePlan, ServiceResult
from daemon.vision.calibration import Calibration, load_calibration
from daemon.vision.camera import VideoFileSource
from daemon.vision.pipeline import PipelineStep

LAST_START = 253_370_764_800.0  # 9999-01-01T00:00:00Z: the latest --start whose reports have valid dates


@dataclass(frozen=True, slots=True)
class VideoProbe:
    """What the container says about a clip before it is read."""

    fps: float
    frame_count: int
    size: tuple[int, int]


class FrameTally:
    """Counts the frames the service saw and the index ranges it never saw (a damaged video's gaps)."""

    def __init__(self) -> None:
        self.decoded = 0
        self.gaps: list[tuple[int, int]] = []
        self._next = 0

    def add(self, frame: Frame, step: PipelineStep) -> None:  # noqa: ARG002  # the FrameObserver protocol
        """Count one frame; an index past the expected one leaves a gap."""
        if frame.index > self._next:
            self.gaps.append((self._next, frame.index - 1))
        self._next = max(self._next, frame.index + 1)
        self.decoded += 1

    def finish(self, frame_count: int) -> None:
        """The frames after the last one seen, up to the container's count, are missing too."""
        if self._next < frame_count:
            self.gaps.append((self._next, frame_count - 1))
            self._next = frame_count

    def close(self) -> None:
        """Nothing to release."""


def _probe(video: Path) -> VideoProbe:
    source = VideoFileSource(video)
    try:
        return VideoProbe(source.fps, source.frame_count, source.size)
    finally:
        source.close()


def _check_annotate(target: Path, video: Path) -> None:
    """TARGET's folder must exist (none is created); TARGET must be neither a folder nor VIDEO itself."""
    if not target.parent.is_dir():
        raise OutputError(f"cannot write {target}: folder {target.parent} does not exist")
    if target.is_dir():
        raise OutputError(f"cannot write {target}: it is a folder; name a file such as {target / 'out.mp4'}")
    if target.exists() and target.resolve() == video.resolve():
        raise OutputError(f"cannot write {target}: it is the video being processed")


def _sibling_calibration(video: Path, in_use: Path) -> Path | None:
    """A calibration.json beside VIDEO that differs from IN_USE (a simulated clip's own rig, usually)."""
    sibling = video.parent / "calibration.json"
    if not sibling.is_file() or (in_use.is_file() and sibling.samefile(in_use)):
        return None
    try:
        theirs, ours = load_calibration(sibling), load_calibration(in_use)
    except CalibrationError:
        return sibling  # one of them is unusable: worth pointing at the other
    same = theirs.polygons == ours.polygons and theirs.frame_size == ours.frame_size
    return None if same else sibling


def _fitted(calibration_file: Path, size: tuple[int, int]) -> Calibration:
    """The calibration, checked against the video's frame size now rather than at its first frame."""
    calibration = load_calibration(calibration_file)
    try:
        calibration.scaled(*size)
    except CalibrationError as err:
        raise CalibrationError(str(calibration_file), err.problems) from err
    return calibration


def _missing(gaps: list[tuple[int, int]]) -> str:
    return ", ".join(f"{first}-{last}" if last > first else f"{first}" for first, last in gaps)


def process_command(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    """Entry point of `putt-daemon process`."""
    video: Path = args.video
    if not video.is_file():
        raise InputMissingError(f"video file not found: {video}")
    if args.annotate is not None:
        _check_annotate(args.annotate, video)
    settings = loaded.settings
    calibration_file: Path = args.calibration or settings.calibration.file
    sibling = None if args.calibration is not None else _sibling_calibration(video, calibration_file)
    if sibling is not None:
        print(
            f"warning: {sibling} beside the video differs from the calibration in use ({calibration_file}); "
            f"to use it: --calibration {shlex.quote(str(sibling))}",
            file=sys.stderr,
        )
    probe = _probe(video)
    length = probe.frame_count / probe.fps
    if args.start is not None and not 0 <= args.start < LAST_START - length:
        # Reports carry calendar dates; argparse took any ISO-8601 time, even one a year 10000 ends.
        print("putt-daemon process: --start must be a time from 1970 to 9998", file=sys.stderr)
        return 2
    calibration = _fitted(calibration_file, probe.size)
    offset = args.start if args.start is not None else video.stat().st_mtime - length
    out = check_output_folder(args.out)
    tally = FrameTally()
    observers: tuple[FrameObserver, ...] = (tally,)
    if args.annotate is not None:
        observers += (Annotator(args.annotate, calibration, probe.fps),)
    source = settings.camera.model_copy(update={"source": str(video.resolve())})
    with tempfile.TemporaryDirectory(prefix="putt-process-") as scratch:
        plan = ServicePlan(
            mode="replay", calibration_file=calibration_file, reports_dir=out, state_dir=Path(scratch),
            epoch_offset=offset, event_sinks=(ConsoleEvents(sys.stdout),), observers=observers,
        )  # fmt: skip
        result = Service(settings.model_copy(update={"camera": source}), plan).run()
    print_summary(result, out)
    tally.finish(probe.frame_count)
    if tally.gaps:
        raise InputDataError(
            f"{video}: decoded {tally.decoded} of {max(probe.frame_count, tally.decoded)} frames; "
            f"missing frames {_missing(tally.gaps)}"
        )
    return 0


def print_summary(result: ServiceResult, out: Path) -> None:
    """One closing line, and where the reports are."""
    print(f"{result.frames} frames, {len(result.putts)} putts, {len(result.sessions)} sessions")
    if result.calibration_drift.startswith(("followed", "mismatch")):
        # A mismatch: the calibration does not belong to this video, and the reports mark the putts.
        print(f"warning: calibration drift {result.calibration_drift}", file=sys.stderr)
    if result.reports:
        print(f"reports in {out}: " + ", ".join(path.name for path in result.reports))
