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
    Number,
    refuse_empty_values,
)

TILT = Number(0.0, 70.0)  # past 70 degrees from straight down the far end of the rig is a sliver
BALL_SPEED = Number(0.0, 1000.0)  # image pixels a second; the simulator's fastest putts reach about 650
# The harder looks of daemon.sim.realism.Realism, by name: spelled out here so --help imports no simulator.
LOOKS = ("channel", "lookalike", "sensor", "exposure", "glare", "seams", "second_ball", "light_surround")


def look_share(text: str) -> tuple[str, float]:
    """LOOK=SHARE: the share of scenes given one harder look."""
    name, equals, share = text.partition("=")
    if not equals or name not in LOOKS:
        raise argparse.ArgumentTypeError(f"must be LOOK=SHARE, LOOK one of {', '.join(LOOKS)} (got {text})")
    return name, SHARE(share)


def add_look_option(parser: argparse.ArgumentParser, overrides: str) -> None:
    """--look LOOK=SHARE, repeatable: one harder look at a share of its own instead of OVERRIDES'."""
    parser.add_argument(
        "--look",
        type=look_share,
        action="append",
        default=[],
        metavar="LOOK=SHARE",
        help=f"share of simulator scenes given this one harder look instead of {overrides}'s "
        f"({', '.join(LOOKS)}); may be given more than once",
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
        "--pale-share",
        type=SHARE,
        default=0.0,
        metavar="SHARE",
        help="share of the balls of a random dataset scene with the light surround (--realism) laid on its "
        "pale floor or catch tray, where a white ball shows only by its shading and shadow (clip frames "
        f"keep their script's balls), {SHARE} (default 0)",
    )
    parser.add_argument(
        "--from-clips",
        action="store_true",
        help="dataset images are frames of scripted clips (seeds SEED*1000 + k) instead of random scenes",
    )
    parser.add_argument(
        "--min-speed",
        type=BALL_SPEED,
        default=0.0,
        metavar="PX",
        help="with --from-clips, only frames where a ball moves at least PX image pixels a second, "
        f"{BALL_SPEED} (default 0: any frame)",
    )
    parser.add_argument(
        "--putter-frames",
        action="store_true",
        help="with --from-clips, only frames with the putter head in the picture (at address beside its "
        "ball, and the stroke), every one kept though the ball rests",
    )
    parser.add_argument(
        "--lookalike-class",
        action="store_true",
        help="label the putter's look-alike inserts too, as class 1 (lookalike) beside the balls' class 0",
    )
    parser.add_argument(
        "--camera",
        choices=("top", "oblique", "random"),
        default="top",
        help="where the camera looks from: straight overhead (top), the golfer's end looking down the mat "
        "(oblique, at 25 to 60 degrees above the mat), or one of them or a tilted overhead one drawn from "
        "the seed (random); default top",
    )
    parser.add_argument(
        "--tilt",
        type=TILT,
        default=None,
        metavar="DEG",
        help=f"the camera's angle from straight down, {TILT}: tilts a top camera in a random direction, sets "
        "an oblique one's (default: top 0, oblique drawn from 30 to 65)",
    )
    parser.add_argument(
        "--oblique-share",
        type=SHARE,
        default=0.0,
        metavar="SHARE",
        help=f"share of dataset images (or clips of --from-clips) seen at an angle, {SHARE} (default 0)",
    )
    parser.add_argument(
        "--realism",
        type=SHARE,
        default=0.0,
        metavar="SHARE",
        help=f"share of scenes given each harder look (dark return channel and catch tray, look-alike putter "
        f"heads, cheap sensor, auto-exposure steps, glare, mat seams, a second ball), {SHARE} (default 0)",
    )
    add_look_option(parser, "--realism")
