"""`putt-daemon process VIDEO`: the whole vision pipeline on a recorded clip, as fast as the CPU allows.

Times come from the clip's frame positions, so the result does not depend on how fast the machine is. Writes
one report pair per session, prints the putts and a summary per session.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from daemon import __version__
from daemon.commands.annotate import Annotator
from daemon.configuration import load_settings
from daemon.delivery.reports import ReportContext, build_report, write_report
from daemon.delivery.sessions import SessionConfig, SessionKeeper
from daemon.logs import set_level
from daemon.models import Frame, PuttEvent, Session
from daemon.progress import Progress
from daemon.settings import Settings
from daemon.vision.calibration import Calibration, load_calibration
from daemon.vision.camera import VideoFileSource
from daemon.vision.classifier import ClassifierConfig, PuttClassifier
from daemon.vision.detector import BallDetector, DetectorConfig, file_sha256
from daemon.vision.motion_gate import MotionGate, MotionGateConfig
from daemon.vision.pipeline import VisionPipeline
from daemon.vision.tracker import BallTracker, TrackerConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProcessResult:
    """Everything a clip produced."""

    putts: tuple[PuttEvent, ...]
    sessions: tuple[Session, ...]
    reports: tuple[Path, ...]
    frames: int


def detector_config(settings: Settings, calibration: Calibration) -> DetectorConfig:
    """The detector settings slice, cropped to the calibrated rig."""
    model = settings.model
    return DetectorConfig(
        path=model.path, sha256=model.sha256, imgsz=None, confidence=model.confidence,
        ball_class=model.ball_class, threads=model.threads, crop=calibration.bounds(),
    )  # fmt: skip


def _epoch_offset(video: Path, source: VideoFileSource, start: float | None) -> float:
    if start is not None:
        return start
    return video.stat().st_mtime - source.frame_count / source.fps


def process_video(settings: Settings, args: argparse.Namespace) -> ProcessResult:
    """Run the pipeline over the clip and write the reports."""
    source = VideoFileSource(args.video)
    calibration_path: Path = args.calibration or settings.calibration.file
    first = source.read()
    if first is None:
        source.close()
        return ProcessResult((), (), (), 0)
    calibration = load_calibration(calibration_path).scaled(first.width, first.height)
    detector = BallDetector.open(detector_config(settings, calibration))
    classifier = PuttClassifier(calibration, ClassifierConfig(**settings.classifier.model_dump()))
    with tempfile.TemporaryDirectory(prefix="putt-journal-") as journal:
        sessions = SessionKeeper(
            SessionConfig(
                settings.device.id,
                settings.session.idle_timeout,
                settings.session.max_duration,
                Path(journal),
            )
        )
        offset = _epoch_offset(args.video, source, args.start)
        pipeline = VisionPipeline(
            detector=detector,
            gate=MotionGate(MotionGateConfig(crop=calibration.bounds())),
            tracker=BallTracker(TrackerConfig(max_gap=settings.tracker.max_gap)),
            classifier=classifier,
            sessions=sessions,
            epoch_offset=offset,
        )
        annotator = (
            Annotator(args.annotate, calibration, source.fps, (first.width, first.height))
            if args.annotate
            else None
        )
        progress = Progress(f"processing {args.video.name}", source.frame_count)
        putts: list[PuttEvent] = []
        finished: list[Session] = []
        frame: Frame | None = first
        count, last_t = 0, 0.0
        try:
            while frame is not None:
                step = pipeline.process(frame)
                putts += step.putts
                finished += step.sessions
                if annotator is not None:
                    annotator.add(frame, step.observation, step.putts)
                count, last_t = count + 1, frame.timestamp
                progress.update(count)
                frame = source.read()
            tail_putts, tail_sessions = pipeline.finish(last_t, "end_of_input")
            putts += tail_putts
            finished += tail_sessions
        finally:
            progress.close()
            source.close()
            detector.close()
            if annotator is not None:
                annotator.close()
    context = ReportContext(
        player_name=settings.device.name, player_email="", software_version=__version__,
        model_version=file_sha256(settings.model.path)[:12],
        calibration_version=file_sha256(calibration_path)[:12],
    )  # fmt: skip
    written = [write_report(build_report(session, context), args.out)[0] for session in finished]
    return ProcessResult(tuple(putts), tuple(finished), tuple(written), count)


def _clock(t: float) -> str:
    minutes, seconds = divmod(t, 60)
    return f"{int(minutes):02d}:{seconds:05.2f}"


def print_result(result: ProcessResult) -> None:
    """The putt table and one summary line per session."""
    print(f"{'#':>3}  {'time':>8}  {'outcome':7}  detail")
    for number, putt in enumerate(result.putts, 1):
        print(f"{number:>3}  {_clock(putt.time):>8}  {putt.outcome:7}  {putt.detail}")
    for session, report in zip(result.sessions, result.reports, strict=True):
        makes = sum(p.is_make for p in session.putts)
        total = len(session.putts)
        print(
            f"session {session.session_id}: {total} putts, {makes} makes ({100 * makes / total:.1f}%), "
            f"{session.end_time - session.start_time:.1f} s, ended by {session.end_reason} -> {report}"
        )
    print(f"{result.frames} frames, {len(result.putts)} putts, {len(result.sessions)} sessions")


def process_command(args: argparse.Namespace) -> int:
    """Entry point of `putt-daemon process`."""
    loaded = load_settings(args.env_file)
    set_level(args.log_level or loaded.settings.log.level)
    result = process_video(loaded.settings, args)
    print_result(result)
    return 0
