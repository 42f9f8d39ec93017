"""`putt-daemon record OUT.mp4 [--seconds S]`: the configured camera to a clip, for `process` and training.

The clip is what the service would have seen: the same camera, size and frame rate. `putt-daemon process` runs
the service on it (to see why a putt was read as it was), and `tools/draft_labels.py` turns it into training
frames for the detector. The mp4 has a constant frame rate, the configured one, and keeps to the camera's
clock: a frame that comes late is preceded by copies of the one before, one that comes early replaces it, so
a second of the clip is a second of the mat. The service owns the camera while it runs, so the command
refuses then (stop it first). It records until --seconds have passed, the source ends, the camera sends
nothing for its stall time (PUTT_CAMERA_STALL_SECONDS; the clip so far is kept), or SIGINT or SIGTERM. The
clip is written under a temporary name and renamed when whole, so a stopped recording is kept, never torn.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from daemon.atomicfile import fsync_dir
from daemon.commands.snapshot import running_service
from daemon.configuration import LoadedSettings
from daemon.errors import CameraError, OutputError
from daemon.models import Frame
from daemon.redact import mask_url
from daemon.service.wiring import camera_openers, stage_configs
from daemon.vision.camera import FrameSource, source_kind
from daemon.vision.mp4 import Mp4Writer
from daemon.vision.timed_source import TimedSource


@contextlib.contextmanager
def stop_on_signals() -> Iterator[list[int]]:
    """While inside, SIGINT and SIGTERM only record that they came: the list holds their numbers."""
    caught: list[int] = []

    def note(signum: int, _frame: FrameType | None) -> None:
        caught.append(signum)

    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def frames_to_write(frame: Frame, first: float, written: int, fps: float) -> int:
    """How many times FRAME goes into a constant-rate clip that began at FIRST and has WRITTEN frames."""
    due = round((frame.timestamp - first) * fps) + 1  # frames the clip should hold once this one is in
    return max(due - written, 0)


def _record(
    source: FrameSource, tmp: Path, fps: float, seconds: float, caught: list[int]
) -> tuple[int, tuple[int, int] | None]:
    """Frames of SOURCE into TMP until SECONDS pass, it ends or stalls after its first frame, a signal is
    CAUGHT or the frame size changes; returns the frames written and their size (None when it gave none)."""
    writer: Mp4Writer | None = None
    size: tuple[int, int] | None = None
    first = 0.0
    written = 0
    started = time.monotonic()
    try:
        while not caught and time.monotonic() - started < seconds:
            try:
                frame = source.read()
            except CameraError as err:
                if writer is None:
                    raise
                print(f"{err}; recording stops")
                break
            if frame is None:
                break
            if writer is None:
                size, first = (frame.width, frame.height), frame.timestamp
                writer = Mp4Writer(tmp, frame.width, frame.height, fps)
            elif (frame.width, frame.height) != size:
                print(f"the camera changed its frame size to {frame.width}x{frame.height}; recording stops")
                break
            for _ in range(frames_to_write(frame, first, written, fps)):
                writer.write(frame.image)
                written += 1
    finally:
        if writer is not None:
            writer.close()
    return written, size


def record_command(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    """Entry point of `putt-daemon record`."""
    out: Path = args.out
    if out.suffix.lower() != ".mp4":
        raise OutputError(f"cannot write {out}: the clip is an mp4 (name it .mp4)")
    if not out.parent.is_dir():
        raise OutputError(f"cannot write {out}: folder {out.parent} does not exist")
    configs = stage_configs(loaded.settings)
    pid = running_service(configs.state_dir)
    if pid is not None:
        raise CameraError(
            f"the running service (pid {pid}) owns the camera: stop it (systemctl stop putt-daemon), record, "
            "then start it again"
        )
    camera = configs.camera
    origin = f"camera {mask_url(camera.source)}"
    tmp = out.with_name(f".{out.name}.tmp")
    opened = camera_openers()[source_kind(camera.source)](camera)
    source = TimedSource(opened, camera.stall_seconds, origin)
    try:
        with stop_on_signals() as caught:
            written, size = _record(source, tmp, camera.fps, args.seconds, caught)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    if size is None:
        raise CameraError(f"{origin} delivered no frame")
    try:
        with tmp.open("rb") as written_clip:  # ffmpeg closed it without a sync: a power cut could tear it
            os.fsync(written_clip.fileno())
        tmp.replace(out)
        fsync_dir(out.parent)
    except OSError as err:
        raise OutputError(f"cannot write {out}: {err}") from err
    width, height = size
    seconds = written / camera.fps
    print(f"{out}: {written} frames of {width}x{height}, {seconds:.1f} s at {camera.fps:g} fps from {origin}")
    return 0
