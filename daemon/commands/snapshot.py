"""`putt-daemon snapshot OUT.jpg [--draw]`: one current frame of the configured camera, as a picture.

While the service runs it owns the camera, so the frame comes from it: the command sends it SIGUSR1 (its pid
is in the state file) and waits, at most `SNAPSHOT_WAIT` seconds, for the service to replace `snapshot.jpg` in
the state folder. With no service running, the command opens the configured camera itself and takes one
frame. `--draw` outlines and names the regions of the configured calibration on it. The calibration page
(`calibrate --serve`) takes its frames the same way.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from daemon.atomicfile import write_atomic
from daemon.configuration import LoadedSettings
from daemon.errors import CalibrationError, CameraError, OutputError
from daemon.models import Image
from daemon.outlets.statefile import STATE_FILE, read_state
from daemon.redact import mask_url
from daemon.service.snapshot import SNAPSHOT_FILE
from daemon.service.wiring import camera_openers, stage_configs
from daemon.settings import Settings
from daemon.vision.calibration import load_calibration
from daemon.vision.camera import CameraConfig, source_kind
from daemon.vision.overlay import draw_regions
from daemon.vision.timed_source import TimedSource

SNAPSHOT_WAIT = 5.0  # seconds: the service answers between two frames, well within this
POLL = 0.05
WARMUP_FRAMES = 5  # a camera just opened adjusts its exposure over its first frames


@dataclass(frozen=True, slots=True)
class Still:
    """One frame and where it came from, in words for the user."""

    image: Image
    origin: str


def running_service(state_dir: Path) -> int | None:
    """The pid of the service whose fresh state file is in STATE_DIR, or None when none is running."""
    reading = read_state(state_dir / STATE_FILE, time.time())
    if reading.problem is not None or reading.state is None:
        return None
    pid = reading.state.get("pid")
    return pid if isinstance(pid, int) else None


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_ino, info.st_mtime_ns


def _decode(data: bytes, origin: str) -> Image:
    image: Image | None = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise CameraError(f"{origin}: the frame is not a readable picture")
    return image


def still_from_service(state_dir: Path, pid: int, wait: float = SNAPSHOT_WAIT) -> Still:
    """Ask the service PID for its newest frame and read it once it has replaced the snapshot file."""
    path = state_dir / SNAPSHOT_FILE
    before = _stamp(path)
    origin = f"the running service (pid {pid})"
    try:
        os.kill(pid, signal.SIGUSR1)
    except ProcessLookupError as err:
        raise CameraError(f"{origin} stopped before it could send a frame") from err
    except PermissionError as err:
        raise CameraError(f"{origin} belongs to another user: run this command as that user") from err
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if _stamp(path) != before:
            # The file is replaced by a rename, so once its stamp changes it is whole.
            return Still(_decode(path.read_bytes(), origin), origin)
        time.sleep(POLL)
    reading = read_state(state_dir / STATE_FILE, time.time())
    camera = "unknown" if reading.state is None else str(reading.state.get("camera", "unknown"))
    raise CameraError(f"{origin} sent no frame within {wait:.0f} s (its camera: {camera}; see its log)")


def still_from_camera(config: CameraConfig) -> Still:
    """Open the configured camera, take one frame (past its first few on a device) and close it."""
    origin = f"camera {mask_url(config.source)}"
    source = TimedSource(camera_openers()[source_kind(config.source)](config), config.stall_seconds, origin)
    try:
        frame = source.read()
        for _ in range(WARMUP_FRAMES if source_kind(config.source) == "device" else 0):
            frame = source.read() or frame
    finally:
        source.close()
    if frame is None:
        raise CameraError(f"{origin} delivered no frame")
    return Still(frame.image, origin)


def take_still(settings: Settings, wait: float = SNAPSHOT_WAIT) -> Still:
    """The current frame: from the running service when there is one, else from the camera itself."""
    configs = stage_configs(settings)
    pid = running_service(configs.state_dir)
    if pid is not None:
        return still_from_service(configs.state_dir, pid, wait)
    return still_from_camera(configs.camera)


def draw_calibration(image: Image, calibration_file: Path) -> None:
    """Outline and name the regions of CALIBRATION_FILE on IMAGE, scaled to its size."""
    calibration = load_calibration(calibration_file)
    height, width = image.shape[:2]
    try:
        calibration = calibration.scaled(width, height)
    except CalibrationError as err:
        raise CalibrationError(f"{calibration_file} on a {width}x{height} frame", err.problems) from err
    draw_regions(image, calibration, labels=True)


def check_picture_target(out: Path) -> None:
    """OUT can be written as a picture: a known image type, in a folder that exists (none is created)."""
    if not cv2.haveImageWriter(str(out)):
        raise OutputError(f"cannot write {out}: not an image file name (use .jpg or .png)")
    if out.is_dir():
        raise OutputError(f"cannot write {out}: it is a folder")
    if not out.parent.is_dir():
        raise OutputError(f"cannot write {out}: folder {out.parent} does not exist")


def snapshot_command(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    """Entry point of `putt-daemon snapshot`."""
    out: Path = args.out
    check_picture_target(out)
    settings = loaded.settings
    still = take_still(settings)
    image = still.image
    if args.draw:
        draw_calibration(image, settings.calibration.file)
    ok, encoded = cv2.imencode(out.suffix, image)
    if not ok:
        raise OutputError(f"cannot encode the frame as {out.suffix}")
    try:
        write_atomic(out, bytes(encoded))
    except OSError as err:
        raise OutputError(f"cannot write {out}: {err}") from err
    height, width = image.shape[:2]
    print(f"{out}: {width}x{height} frame from {still.origin}" + (", regions drawn" if args.draw else ""))
    return 0
