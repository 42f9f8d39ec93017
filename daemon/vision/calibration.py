"""Calibration: the rig's regions in frame pixels, in the Proof of Putt file format.

The user clicks seven regions; the ramp lanes and hole quadrants are derived from them exactly as the Proof of
Putt calibrator did, and are always re-derived at load so old files (4-point quadrants) and new ones agree.
Membership uses the ball centre, and a point on a polygon's edge counts as inside.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from daemon.atomicfile import write_text_atomic
from daemon.errors import CalibrationError
from daemon.models import Lane, Point, Quadrant

FORMAT_VERSION = 1
ASPECT_TOLERANCE = 0.02  # frame shapes closer than this are the same camera at another resolution


class Region(StrEnum):
    """Every region a calibration file holds, by its key in the file."""

    MAT = "PUTTING_MAT_ROI"
    RAMP = "RAMP_ROI"
    HOLE = "HOLE_ROI"
    LEFT_OF_MAT = "LEFT_OF_MAT_ROI"
    CATCH = "CATCH_ROI"
    RETURN_TRACK = "RETURN_TRACK_ROI"
    IGNORE_AREA = "IGNORE_AREA_ROI"
    RAMP_LEFT = "RAMP_LEFT_ROI"
    RAMP_CENTER = "RAMP_CENTER_ROI"
    RAMP_RIGHT = "RAMP_RIGHT_ROI"
    HOLE_TOP = "HOLE_TOP_ROI"
    HOLE_RIGHT = "HOLE_RIGHT_ROI"
    HOLE_LOW = "HOLE_LOW_ROI"
    HOLE_LEFT = "HOLE_LEFT_ROI"


CLICKED = (
    Region.MAT,
    Region.RAMP,
    Region.HOLE,
    Region.LEFT_OF_MAT,
    Region.CATCH,
    Region.RETURN_TRACK,
    Region.IGNORE_AREA,
)
RAMP_LANES: dict[Region, Lane] = {
    Region.RAMP_LEFT: "LEFT",
    Region.RAMP_CENTER: "CENTER",
    Region.RAMP_RIGHT: "RIGHT",
}
HOLE_QUADRANTS: dict[Region, Quadrant] = {
    Region.HOLE_TOP: "TOP",
    Region.HOLE_RIGHT: "RIGHT",
    Region.HOLE_LOW: "LOW",
    Region.HOLE_LEFT: "LEFT",
}
# Vertex indices of the 20-gon around the cup that bound each quadrant (image coordinates, y down).
_QUADRANT_VERTICES = {
    Region.HOLE_TOP: range(18, 24),
    Region.HOLE_RIGHT: range(3, 9),
    Region.HOLE_LOW: range(8, 14),
    Region.HOLE_LEFT: range(13, 19),
}

Polygon = tuple[tuple[int, int], ...]


def derive_ramp_lanes(ramp: Polygon) -> dict[Region, Polygon]:
    """Cut the ramp quad into three bands: LEFT at its top edge (smallest y), RIGHT at its bottom edge."""
    by_y = sorted(ramp, key=lambda p: (p[1], p[0]))
    top_left, top_right = sorted(by_y[:2])
    bottom_left, bottom_right = sorted(by_y[2:])

    def cut(a: tuple[int, int], b: tuple[int, int], t: float) -> tuple[int, int]:
        return int(a[0] + (b[0] - a[0]) * t), int(a[1] + (b[1] - a[1]) * t)

    left1, left2 = cut(top_left, bottom_left, 1 / 3), cut(top_left, bottom_left, 2 / 3)
    right1, right2 = cut(top_right, bottom_right, 1 / 3), cut(top_right, bottom_right, 2 / 3)
    return {
        Region.RAMP_LEFT: (top_left, top_right, right1, left1),
        Region.RAMP_CENTER: (left1, right1, right2, left2),
        Region.RAMP_RIGHT: (left2, right2, bottom_right, bottom_left),
    }


def hole_circle(hole: Polygon) -> tuple[float, float, float]:
    """Centre (image moments of the clicked outline) and mean radius of the cup."""
    contour = np.array(hole, dtype=np.int32).reshape(-1, 1, 2)
    moments = cv2.moments(contour)
    if moments["m00"] == 0:
        cx, cy = (float(v) for v in np.mean(np.array(hole, dtype=np.float64), axis=0))
    else:
        cx, cy = moments["m10"] / moments["m00"], moments["m01"] / moments["m00"]
    radius = float(np.mean([math.hypot(x - cx, y - cy) for x, y in hole]))
    return cx, cy, radius


def derive_hole_quadrants(hole: Polygon) -> dict[Region, Polygon]:
    """Four 7-point fans (centre plus six vertices of a 20-gon) around the cup."""
    fx, fy, _ = hole_circle(hole)
    # The original truncated the centre to whole pixels before measuring the radius and placing vertices.
    cx, cy = int(fx), int(fy)
    radius = float(np.mean([math.hypot(x - cx, y - cy) for x, y in hole]))
    centre = (cx, cy)
    vertices = [
        (
            int(cx + radius * math.cos(math.radians(18 * i - 9))),
            int(cy + radius * math.sin(math.radians(18 * i - 9))),
        )
        for i in range(20)
    ]
    return {
        region: (centre, *(vertices[i % 20] for i in indices))
        for region, indices in _QUADRANT_VERTICES.items()
    }


@dataclass(frozen=True)
class Calibration:
    """The rig's regions; build with `from_clicked` or `load_calibration` so the derived ones agree."""

    polygons: Mapping[Region, Polygon]
    camera_index: int = -1
    frame_size: tuple[int, int] | None = None
    calibrated_at: str | None = None
    _contours: dict[Region, npt.NDArray[np.float32]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        contours = {r: np.array(p, dtype=np.float32).reshape(-1, 1, 2) for r, p in self.polygons.items()}
        object.__setattr__(self, "_contours", contours)

    @classmethod
    def from_clicked(
        cls,
        clicked: Mapping[Region, Polygon],
        camera_index: int = -1,
        frame_size: tuple[int, int] | None = None,
        calibrated_at: str | None = None,
    ) -> Calibration:
        """A calibration from the seven clicked regions, deriving lanes and quadrants."""
        polygons: dict[Region, Polygon] = {region: tuple(clicked[region]) for region in CLICKED}
        polygons |= derive_ramp_lanes(polygons[Region.RAMP])
        polygons |= derive_hole_quadrants(polygons[Region.HOLE])
        return cls(polygons, camera_index, frame_size, calibrated_at)

    def contains(self, region: Region, point: Point) -> bool:
        """Whether POINT lies in REGION, its edge included."""
        return cv2.pointPolygonTest(self._contours[region], (float(point.x), float(point.y)), False) >= 0

    def distance(self, region: Region, point: Point) -> float:
        """Pixels from POINT to REGION's edge: positive inside, negative outside."""
        return cv2.pointPolygonTest(self._contours[region], (float(point.x), float(point.y)), True)

    def lane(self, point: Point) -> Lane:
        """The ramp band holding POINT (LEFT, CENTER or RIGHT), or UNKNOWN off the ramp.

        The bands' cut points are whole pixels, so slivers of the ramp lie in no band; a point there takes
        the nearest band rather than the Proof of Putt's `RAMP`, which flipped on half a pixel.
        """
        for region, name in RAMP_LANES.items():
            if self.contains(region, point):
                return name
        if not self.contains(Region.RAMP, point):
            return "UNKNOWN"
        nearest = max(RAMP_LANES, key=lambda region: self.distance(region, point))
        return RAMP_LANES[nearest]

    def quadrant(self, point: Point) -> Quadrant | None:
        """The hole quadrant holding POINT, or None."""
        for region, name in HOLE_QUADRANTS.items():
            if self.contains(region, point):
                return name
        return None

    def scaled(self, width: int, height: int) -> Calibration:
        """The same rig for a camera running at WIDTH x HEIGHT (needs the calibrated frame size)."""
        if self.frame_size is None or self.frame_size == (width, height):
            return self
        sx, sy = width / self.frame_size[0], height / self.frame_size[1]
        # Scaling stretches the regions when the shapes differ: such a calibration belongs to another camera.
        if abs(sx / sy - 1) > ASPECT_TOLERANCE:
            made = f"{self.frame_size[0]}x{self.frame_size[1]}"
            raise CalibrationError(
                "calibration", [f"made for {made} frames, which cannot be scaled to {width}x{height} frames"]
            )
        clicked = {r: tuple((round(x * sx), round(y * sy)) for x, y in self.polygons[r]) for r in CLICKED}
        return Calibration.from_clicked(clicked, self.camera_index, (width, height), self.calibrated_at)

    def bounds(self) -> tuple[int, int, int, int]:
        """x1, y1, x2, y2 around every region but the ignore area."""
        points = np.array([p for r in CLICKED if r is not Region.IGNORE_AREA for p in self.polygons[r]])
        x1, y1 = points.min(axis=0)
        x2, y2 = points.max(axis=0)
        return int(x1), int(y1), int(x2), int(y2)

    def to_json(self) -> dict[str, Any]:
        """The Proof of Putt file layout plus our own optional fields."""
        out: dict[str, Any] = {"camera_index": self.camera_index}
        for region in Region:
            out[region.value] = [list(p) for p in self.polygons[region]]
        out["version"] = FORMAT_VERSION
        if self.frame_size is not None:
            out["frame_width"], out["frame_height"] = self.frame_size
        if self.calibrated_at is not None:
            out["calibrated_at"] = self.calibrated_at
        return out

    def save(self, path: Path) -> None:
        """Write the file atomically."""
        write_text_atomic(path, json.dumps(self.to_json(), indent=2) + "\n")


def _polygon(raw: object, region: Region, problems: list[str]) -> Polygon | None:
    if not isinstance(raw, list) or not all(
        isinstance(p, list)
        and len(p) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in p)
        for p in raw
    ):
        problems.append(f"{region.value}: expected a list of [x, y] number pairs")
        return None
    return tuple((round(p[0]), round(p[1])) for p in raw)


def _check_polygon(
    region: Region, poly: Polygon, frame_size: tuple[int, int] | None, problems: list[str]
) -> None:
    if len(poly) < 3:
        problems.append(f"{region.value}: needs at least 3 points, has {len(poly)}")
        return
    if cv2.contourArea(np.array(poly, dtype=np.float32)) <= 0:
        problems.append(f"{region.value}: has zero area")
    bad = [p for p in poly if p[0] < 0 or p[1] < 0]
    if frame_size is not None:
        bad += [p for p in poly if p[0] >= frame_size[0] or p[1] >= frame_size[1]]
    if bad:
        problems.append(f"{region.value}: point {list(bad[0])} lies outside the frame")


def _frame_size(data: Mapping[str, Any], problems: list[str]) -> tuple[int, int] | None:
    width, height = data.get("frame_width"), data.get("frame_height")
    if width is None and height is None:
        return None
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        problems.append(
            f"frame_width/frame_height: expected two positive integers (got {width!r}, {height!r})"
        )
        return None
    return width, height


def parse_calibration(data: object, source: str = "calibration") -> Calibration:
    """Validate a decoded calibration file; raise CalibrationError naming every bad region."""
    if not isinstance(data, dict):
        raise CalibrationError(source, ["expected a JSON object"])
    problems: list[str] = []
    frame_size = _frame_size(data, problems)
    clicked: dict[Region, Polygon] = {}
    for region in CLICKED:
        if region.value not in data:
            problems.append(f"{region.value}: missing")
            continue
        poly = _polygon(data[region.value], region, problems)
        if poly is not None:
            _check_polygon(region, poly, frame_size, problems)
            clicked[region] = poly
    if not problems:
        ramp = np.array(clicked[Region.RAMP], dtype=np.float32).reshape(-1, 1, 2)
        if not any(
            cv2.pointPolygonTest(ramp, (float(x), float(y)), False) >= 0 for x, y in clicked[Region.HOLE]
        ):
            problems.append(f"{Region.HOLE.value}: the hole is neither inside nor touching the ramp")
        if len(clicked[Region.RAMP]) != 4:
            problems.append(f"{Region.RAMP.value}: needs exactly 4 points to derive the lanes")
    camera_index = data.get("camera_index", -1)
    if not isinstance(camera_index, int):
        problems.append(f"camera_index: expected an integer (got {camera_index!r})")
    if problems:
        raise CalibrationError(source, problems)
    calibrated_at = data.get("calibrated_at")
    return Calibration.from_clicked(
        clicked, camera_index, frame_size, calibrated_at if isinstance(calibrated_at, str) else None
    )


def load_calibration(path: Path) -> Calibration:
    """Read and validate a calibration file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise CalibrationError(str(path), ["file not found"]) from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CalibrationError(str(path), [f"not readable JSON: {err}"]) from err
    return parse_calibration(data, str(path))
