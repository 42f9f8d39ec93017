"""`putt-daemon calibrate --check FILE [--image IMG] [--draw OUT.png]`: validate a calibration, draw it.

Checking writes nothing. `--image` also checks that the calibration fits that camera's frame shape. Only
`--draw` writes a picture: the regions, each labelled with its name in the file, on IMG (scaled to its size)
or on a white frame.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from daemon.commands.annotate import draw_regions
from daemon.errors import CalibrationError, InputDataError, InputMissingError, OutputError
from daemon.models import Image
from daemon.vision.calibration import CLICKED, Calibration, Region, load_calibration


def _check_drawing_target(out: Path) -> None:
    """OUT can be written as an image: a known image type, in a folder that exists (none is created)."""
    if not cv2.haveImageWriter(str(out)):
        raise OutputError(f"cannot write {out}: not an image file name (use .png or .jpg)")
    if not out.parent.is_dir():
        raise OutputError(f"cannot write {out}: folder {out.parent} does not exist")
    if out.is_dir():
        raise OutputError(f"cannot write {out}: it is a folder")


def _read_image(path: Path) -> Image:
    if not path.is_file():
        raise InputMissingError(f"image file not found: {path}")
    image: Image | None = cv2.imread(str(path))
    if image is None:
        raise InputDataError(f"{path}: not a readable image")
    return image


def _anchor(region: Region, points: npt.NDArray[np.float32], text_h: int) -> tuple[float, float]:
    """Where REGION's name goes: its centre, but the cup's below the cup and the ramp's near its top edge,
    clear of the cup drawn in the middle of the ramp."""
    x, y = points.mean(axis=0)
    if region is Region.HOLE:
        return float(x), float(points[:, 1].max()) + text_h + 4
    if region is Region.RAMP:
        top = points[np.argsort(points[:, 1])[:2]].mean(axis=0)
        return float(x + (top[0] - x) * 0.7), float(y + (top[1] - y) * 0.7)
    return float(x), float(y)


def _label_regions(image: Image, calibration: Calibration) -> None:
    """Write each clicked region's name, dark on a light outline so it reads on any still."""
    height, width = image.shape[:2]
    for region in CLICKED:
        points = np.array(calibration.polygons[region], dtype=np.float32)
        (text_w, text_h), _ = cv2.getTextSize(region.value, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
        x, y = _anchor(region, points, text_h)
        origin = (
            int(min(max(x - text_w / 2, 2), max(width - text_w - 2, 2))),
            int(min(max(y + text_h / 2, text_h + 2), height - 2)),
        )
        for colour, thickness in (((255, 255, 255), 3), ((30, 30, 30), 1)):
            cv2.putText(
                image, region.value, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, thickness, cv2.LINE_AA
            )


def calibrate_command(args: argparse.Namespace) -> int:
    """Entry point of `putt-daemon calibrate`."""
    if args.check is None:
        print("putt-daemon calibrate: interactive calibration is not available yet; use --check FILE",
              file=sys.stderr)  # fmt: skip
        return 2
    draw: Path | None = args.draw
    if draw is not None:
        _check_drawing_target(draw)
    calibration = load_calibration(args.check)
    still = None if args.image is None else _read_image(args.image)
    size = calibration.frame_size
    print(f"{args.check}: valid" + (f", calibrated at {size[0]}x{size[1]}" if size else ""))
    for region in Region:
        points = np.array(calibration.polygons[region], dtype=np.float32)
        print(f"  {region.value:18} {len(points):2d} points, area {cv2.contourArea(points):9.0f} px")
    if still is not None:
        image = still
        try:
            calibration = calibration.scaled(image.shape[1], image.shape[0])
        except CalibrationError as err:
            raise CalibrationError(f"{args.check} on {args.image}", err.problems) from err
        print(f"fits {args.image} ({image.shape[1]}x{image.shape[0]})")
    else:
        _, _, x2, y2 = calibration.bounds()
        width, height = size or (x2 + 20, y2 + 20)
        image = np.full((height, width, 3), 255, np.uint8)
    if draw is None:
        return 0
    draw_regions(image, calibration)
    _label_regions(image, calibration)
    if not cv2.imwrite(str(draw), image):
        raise OutputError(f"cannot write {draw}")
    print(f"regions drawn to {draw}")
    return 0
