"""Arguments of `putt-daemon demo` (argparse only, so `--help` imports nothing heavy)."""

from __future__ import annotations

import argparse
from pathlib import Path


def positive(text: str) -> int:
    """A whole number of at least 1, for argparse."""
    try:
        value = int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from err
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the demo command's options to PARSER."""
    parser.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    parser.add_argument(
        "--putts", type=positive, default=8, metavar="N", help="putts to simulate, at least 1 (default 8)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the session report and journal (default: <state folder>/demo)",
    )
    parser.add_argument(
        "--realtime", action="store_true", help="play the simulated camera at 30 frames/s, as a live camera"
    )
