"""The calibration page's state: the frame being calibrated, the points it starts from, and saving them.

`derived_regions` computes the ramp lanes and cup quadrants with `daemon.vision.calibration` itself, so the
page shows exactly what the daemon will use. `CalibrationPage.save` validates with `parse_calibration` (as
`calibrate --check` does), keeps the previous file (and its scene reference) beside the new one as
`<name>.prev.json`, writes atomically with the scene reference of the frame (for drift detection), and asks a
running service to reload (SIGHUP).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

import cv2

from daemon.atomicfile import write_atomic
from daemon.errors import CalibrationError, OutputError
from daemon.models import Image
from daemon.vision.calibration import (
    CLICKED,
    FORMAT_VERSION,
    Calibration,
    Polygon,
    Region,
    derive_hole_quadrants,
    derive_ramp_lanes,
    parse_calibration,
)
from daemon.vision.drift import reference_path, write_reference

logger = logging.getLogger(__name__)

# How many points the user clicks for each region, in the order the Proof of Putt calibrator asked for them.
POINT_COUNTS = {Region.HOLE: 12}
NAMES = {
    Region.MAT: "Putting mat",
    Region.RAMP: "Ramp",
    Region.HOLE: "Hole (around the cup)",
    Region.LEFT_OF_MAT: "Left of mat",
    Region.CATCH: "Catch area",
    Region.RETURN_TRACK: "Return track",
    Region.IGNORE_AREA: "Ignore area",
}


class RequestError(Exception):
    """A request the page answers with STATUS and a message (and the calibration's problems, if any)."""

    def __init__(self, status: HTTPStatus, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.problems = problems


@dataclass(frozen=True, slots=True)
class PageConfig:
    """Where the calibration lives and who may use the page."""

    calibration_file: Path
    token: str | None  # None: localhost only, checked by the Host header
    reload_service: Callable[[], int | None]  # SIGHUPs a running service; its pid, or None if none runs


def previous_path(path: Path) -> Path:
    """Where the calibration before the last save is kept: `calibration.prev.json` beside it."""
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def sighup(pid: int | None) -> int | None:
    """Send SIGHUP to PID if there is one; the pid when it was sent."""
    if pid is None:
        return None
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return None
    return pid


def parse_points(body: object) -> dict[Region, Polygon]:
    """The clicked regions of a body `{"points": {"RAMP_ROI": [[x, y], ...], ...}}`; may be partial."""
    raw = body.get("points") if isinstance(body, dict) else None
    if not isinstance(raw, dict):
        raise RequestError(HTTPStatus.BAD_REQUEST, 'expected {"points": {region: [[x, y], ...]}}')
    points: dict[Region, Polygon] = {}
    for region in CLICKED:
        value = raw.get(region.value, [])
        if not isinstance(value, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(type(v) in (int, float) for v in p) for p in value
        ):
            raise RequestError(HTTPStatus.BAD_REQUEST, f"{region.value}: expected a list of [x, y] numbers")
        if value:
            points[region] = tuple((round(x), round(y)) for x, y in value)
    return points


def derived_regions(points: dict[Region, Polygon]) -> dict[str, list[list[int]]]:
    """The lanes once the ramp has its 4 points and the quadrants once the cup has 3 or more."""
    derived: dict[Region, Polygon] = {}
    if len(points.get(Region.RAMP, ())) == 4:
        derived |= derive_ramp_lanes(points[Region.RAMP])
    if len(points.get(Region.HOLE, ())) >= 3:
        derived |= derive_hole_quadrants(points[Region.HOLE])
    return {region.value: [list(p) for p in polygon] for region, polygon in derived.items()}


class CalibrationPage:
    """What the page shows and saves: one frame, the points it started from, and the file to write."""

    def __init__(
        self,
        config: PageConfig,
        frames: Callable[[], Image],
        start: Calibration | None,
        notice: str | None,
        *,
        first: Image | None = None,
    ) -> None:
        self.config = config
        self._frames = frames
        self._lock = threading.Lock()
        self._start = start
        self._notice = notice
        self._frame = frames() if first is None else first
        self._jpeg = self._encode(self._frame)

    @staticmethod
    def _encode(image: Image) -> bytes:
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            raise OutputError("cannot encode the frame as JPEG")
        return bytes(encoded)

    @property
    def size(self) -> tuple[int, int]:
        """Width and height of the frame being calibrated."""
        height, width = self._frame.shape[:2]
        return int(width), int(height)

    def frame_jpeg(self) -> bytes:
        """The frame as JPEG."""
        with self._lock:
            return self._jpeg

    def new_frame(self) -> dict[str, int]:
        """Take a new frame; its size."""
        frame = self._frames()
        with self._lock:
            self._frame, self._jpeg = frame, self._encode(frame)
        width, height = self.size
        return {"width": width, "height": height}

    def current(self) -> dict[str, Any]:
        """The page's starting state."""
        width, height = self.size
        start = self._start
        return {
            "width": width,
            "height": height,
            "file": str(self.config.calibration_file),
            "notice": self._notice,
            "regions": [{"key": r.value, "name": NAMES[r], "count": POINT_COUNTS.get(r, 4)} for r in CLICKED],
            "points": {}
            if start is None
            else {r.value: [list(p) for p in start.polygons[r]] for r in CLICKED},
        }

    def save(self, points: dict[Region, Polygon]) -> dict[str, Any]:
        """Validate POINTS as `calibrate --check` would, keep the old file, write the new one with the scene
        reference of the frame it was made on, and make a running service reload it."""
        with self._lock:
            frame = self._frame
        height, width = frame.shape[:2]
        data: dict[str, Any] = {r.value: [list(p) for p in points.get(r, ())] for r in CLICKED}
        data |= {
            "camera_index": -1 if self._start is None else self._start.camera_index,
            "frame_width": width,
            "frame_height": height,
            "version": FORMAT_VERSION,
            "calibrated_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        path = self.config.calibration_file
        try:
            calibration = parse_calibration(data, path.name)
        except CalibrationError as err:
            raise RequestError(HTTPStatus.UNPROCESSABLE_ENTITY, "not saved", err.problems) from err
        with self._lock:
            previous = None
            try:
                if path.is_file():
                    previous = self._keep(path)
                calibration.save(path)
                write_reference(frame, calibration, path)
            except OSError as err:
                raise RequestError(HTTPStatus.INTERNAL_SERVER_ERROR, f"cannot write {path}: {err}") from err
            self._start = calibration
        pid = self.config.reload_service()  # after the reference, so the service reloads both together
        logger.info("calibration saved to %s%s", path, f"; service {pid} asked to reload" if pid else "")
        return {
            "saved": str(path),
            "previous": None if previous is None else str(previous),
            "calibrated_at": calibration.calibrated_at,
            "service_pid": pid,
        }

    @staticmethod
    def _keep(path: Path) -> Path:
        """Copy the calibration at PATH, and its scene reference if it has one, to `<name>.prev.json`."""
        previous = previous_path(path)
        write_atomic(previous, path.read_bytes())
        reference, kept_reference = reference_path(path), reference_path(previous)
        if reference.is_file():
            write_atomic(kept_reference, reference.read_bytes())
        else:
            kept_reference.unlink(missing_ok=True)  # an older one would not belong to this calibration
        return previous
