"""Arguments of `putt-daemon simulate` (argparse only, so `--help` imports nothing heavy)."""

from __future__ import annotations

import argparse
from pathlib import Path

from daemon.commands.arguments import (
    FPS,
    HEIGHT,
    IMAGES,
    PUTTS,
    SEED,
    SESSIONS,
    SHARE,
    WIDTH,
    refuse_empty_values,
)


def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulate command's options to PARSER."""
    refuse_empty_values(parser)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="write clip.mp4, truth.json and calibration.json here")
    target.add_argument("--dataset", type=Path, help="write a YOLO detection dataset here")
    parser.add_argument(
        "--sessions",
        type=SESSIONS,
        default=1,
        metavar="N",
        help=f"sessions in a clip, {SESSIONS} (default 1)",
    )
    parser.add_argument(
        "--putts", type=PUTTS, default=10, metavar="N", help=f"putts per session, {PUTTS} (default 10)"
    )
    parser.add_argument(
        "--images", type=IMAGES, default=400, metavar="N", help=f"dataset images, {IMAGES} (default 400)"
    )
    parser.add_argument("--seed", type=SEED, default=0, help=f"scene and script seed, {SEED} (default 0)")
    parser.add_argument(
        "--width", type=WIDTH, default=640, metavar="PX", help=f"frame width, {WIDTH} (default 640)"
    )
    parser.add_argument(
        "--height", type=HEIGHT, default=480, metavar="PX", help=f"frame height, {HEIGHT} (default 480)"
    )
    parser.add_argument("--fps", type=FPS, default=30.0, help=f"frames per second, {FPS} (default 30)")
    parser.add_argument(
        "--default-rig",
        action="store_true",
        help="the default rig pose (config/calibration.json) for any seed",
    )
    parser.add_argument(
        "--crop-share",
        type=SHARE,
        default=0.0,
        metavar="SHARE",
        help=f"share of dataset images cut to the rig as the detector sees it, {SHARE} (default 0)",
    )
    parser.add_argument(
        "--from-clips",
        action="store_true",
        help="dataset images are frames of scripted clips (seeds SEED*1000 + k) instead of random scenes",
    )
