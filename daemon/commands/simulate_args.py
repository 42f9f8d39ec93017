"""Arguments of `putt-daemon simulate` (argparse only, so `--help` imports nothing heavy)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulate command's options to PARSER."""
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="write clip.mp4, truth.json and calibration.json here")
    target.add_argument("--dataset", type=Path, help="write a YOLO detection dataset here")
    parser.add_argument("--sessions", type=int, default=1, help="sessions in the clip (default 1)")
    parser.add_argument("--putts", type=int, default=10, help="putts per session (default 10)")
    parser.add_argument("--images", type=int, default=400, help="dataset images (default 400)")
    parser.add_argument("--seed", type=int, default=0, help="scene and script seed (default 0)")
    parser.add_argument("--width", type=int, default=640, help="frame width (default 640)")
    parser.add_argument("--height", type=int, default=480, help="frame height (default 480)")
    parser.add_argument("--fps", type=float, default=30.0, help="frames per second (default 30)")
    parser.add_argument(
        "--default-rig",
        action="store_true",
        help="the default rig pose (config/calibration.json) for any seed",
    )
    parser.add_argument(
        "--crop-share",
        type=float,
        default=0.0,
        help="share of dataset images cut to the rig as the detector sees it",
    )
    parser.add_argument(
        "--from-clips",
        action="store_true",
        help="dataset images are frames of scripted clips (seeds SEED*1000 + k) instead of random scenes",
    )
