"""Drawing a calibration on a picture: region outlines, lanes, cup quadrants and region names.

Used by `process --annotate`, `calibrate --check --draw`, `snapshot --draw` and the service's snapshot, so
every picture of a calibration looks the same. Draws in place on a BGR image; never reads or writes files.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from daemon.models import Image
from daemon.vision.calibration import CLICKED, Calibration, Region

_COLOURS = {
    Region.MAT: (60, 180, 60),
    Region.RAMP: (200, 160, 40),
    Region.HOLE: (0, 0, 0),
    Region.LEFT_OF_MAT: (120, 120, 120),
    Region.CATCH: (40, 40, 200),
    Region.RETURN_TRACK: (200, 60, 200),
    Region.IGNORE_AREA: (90, 90, 90),
}
_LANE_COLOUR = (160, 120, 40)
_QUADRANT_COLOUR = (0, 200, 255)
_QUADRANTS = (Region.HOLE_TOP, Region.HOLE_RIGHT, Region.HOLE_LOW, Region.HOLE_LEFT)
_LANES = (Region.RAMP_LEFT, Region.RAMP_CENTER, Region.RAMP_RIGHT)


def draw_regions(image: Image, calibration: Calibration, *, labels: bool = False) -> None:
    """Outline the clicked regions, the ramp lanes and the cup quadrants; name the clicked ones if LABELS."""
    for region in (*CLICKED, *_LANES):
        points = np.array(calibration.polygons[region], dtype=np.int32).reshape(-1, 1, 2)
        cv2.polylines(image, [points], isClosed=True, color=_COLOURS.get(region, _LANE_COLOUR), thickness=1)
    for region in _QUADRANTS:
        points = np.array(calibration.polygons[region], dtype=np.int32).reshape(-1, 1, 2)
        cv2.polylines(image, [points], isClosed=True, color=_QUADRANT_COLOUR, thickness=1)
    if labels:
        label_regions(image, calibration)


def label_anchor(region: Region, points: npt.NDArray[np.float32], text_h: int) -> tuple[float, float]:
    """Where REGION's name goes: its centre, but the cup's below the cup and the ramp's near its top edge,
    clear of the cup drawn in the middle of the ramp."""
    x, y = points.mean(axis=0)
    if region is Region.HOLE:
        return float(x), float(points[:, 1].max()) + text_h + 4
    if region is Region.RAMP:
        top = points[np.argsort(points[:, 1])[:2]].mean(axis=0)
        return float(x + (top[0] - x) * 0.7), float(y + (top[1] - y) * 0.7)
    return float(x), float(y)


def label_regions(image: Image, calibration: Calibration) -> None:
    """Write each clicked region's name, dark on a light outline so it reads on any still."""
    height, width = image.shape[:2]
    for region in CLICKED:
        points = np.array(calibration.polygons[region], dtype=np.float32)
        (text_w, text_h), _ = cv2.getTextSize(region.value, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
        x, y = label_anchor(region, points, text_h)
        origin = (
            int(min(max(x - text_w / 2, 2), max(width - text_w - 2, 2))),
            int(min(max(y + text_h / 2, text_h + 2), height - 2)),
        )
        for colour, thickness in (((255, 255, 255), 3), ((30, 30, 30), 1)):
            cv2.putText(
                image, region.value, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, thickness, cv2.LINE_AA
            )
