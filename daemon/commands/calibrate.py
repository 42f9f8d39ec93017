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

from daemon.commands.arguments import read_image
from daemon.commands.calibrate_auto import auto_calibrate
from daemon.errors import CalibrationError, OutputError
from daemon.vision.calibration import Region, load_calibration
from daemon.vision.overlay import draw_regions


def _check_drawing_target(out: Path) -> None:
    """OUT can be written as an image: a known image type, in a folder that exists (none is created)."""
    if not cv2.haveImageWriter(str(out)):
        raise OutputError(f"cannot write {out}: not an image file name (use .png or .jpg)")
    if not out.parent.is_dir():
        raise OutputError(f"cannot write {out}: folder {out.parent} does not exist")
    if out.is_dir():
        raise OutputError(f"cannot write {out}: it is a folder")


def calibrate_command(args: argparse.Namespace) -> int:
    """Entry point of `putt-daemon calibrate`."""
    if args.auto is not None:
        return auto_calibrate(args.auto, args.out)
    if args.serve:
        from daemon.commands.calibrate_page.command import serve_page  # noqa: PLC0415  # --check stays light

        return serve_page(args)
    if args.check is None:
        print("putt-daemon calibrate: use --check FILE, --serve or --auto IMG --out FILE", file=sys.stderr)
        return 2
    draw: Path | None = args.draw
    if draw is not None:
        _check_drawing_target(draw)
    calibration = load_calibration(args.check)
    still = None if args.image is None else read_image(args.image)
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
    draw_regions(image, calibration, labels=True)
    if not cv2.imwrite(str(draw), image):
        raise OutputError(f"cannot write {draw}")
    print(f"regions drawn to {draw}")
    return 0
