"""`putt-daemon calibrate --check FILE [--image IMG]`: validate a calibration and draw its regions."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from daemon.commands.annotate import draw_regions
from daemon.errors import CalibrationError
from daemon.vision.calibration import Region, load_calibration


def calibrate_command(args: argparse.Namespace) -> int:
    """Entry point of `putt-daemon calibrate`."""
    if args.check is None:
        print("putt-daemon calibrate: interactive calibration is not available yet; use --check FILE")
        return 2
    calibration = load_calibration(args.check)
    size = calibration.frame_size
    print(f"{args.check}: valid" + (f", calibrated at {size[0]}x{size[1]}" if size else ""))
    for region in Region:
        points = np.array(calibration.polygons[region], dtype=np.float32)
        print(f"  {region.value:18} {len(points):2d} points, area {cv2.contourArea(points):9.0f} px")
    if args.image is not None:
        image = cv2.imread(str(args.image))
        if image is None:
            raise CalibrationError(str(args.image), ["not a readable image"])
        calibration = calibration.scaled(image.shape[1], image.shape[0])
    else:
        _, _, x2, y2 = calibration.bounds()
        width, height = size or (x2 + 20, y2 + 20)
        image = np.full((height, width, 3), 255, np.uint8)
    draw_regions(image, calibration)
    out: Path = args.out or args.check.with_suffix(".png")
    if not cv2.imwrite(str(out), image):
        raise CalibrationError(str(out), ["cannot write the drawing"])
    print(f"regions drawn to {out}")
    return 0
