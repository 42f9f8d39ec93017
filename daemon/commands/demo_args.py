"""Arguments of `putt-daemon demo` (argparse only, so `--help` imports nothing heavy)."""

from __future__ import annotations

import argparse
from pathlib import Path

from daemon.commands.arguments import PUTTS, SEED, refuse_empty_values


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the demo command's options to PARSER."""
    refuse_empty_values(parser)
    parser.add_argument("--seed", type=SEED, default=1, help=f"simulation seed, {SEED} (default 1)")
    parser.add_argument(
        "--putts", type=PUTTS, default=8, metavar="N", help=f"putts to simulate, {PUTTS} (default 8)"
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
