"""Argument types, path checks and input readers the commands share: bad input is a usage or input error,
no traceback.

Each range is one object: argparse calls it to convert and check a value, and the help text names the same
bounds (`help=f"putts per session, {PUTTS} (default 10)"`), so `--help` and the error say the same thing.
The simulator's bounds are what it was tried at: below `MIN_WIDTH` x `MIN_HEIGHT` or `MIN_FPS` some seeds
script putts the camera cannot see on the ramp; the upper bounds keep a typo from asking for hours of
rendering or gigabytes of frames.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2

from daemon.errors import InputDataError, InputMissingError, OutputError
from daemon.models import Image


@dataclass(frozen=True, slots=True)
class Whole:
    """A whole number from LOW to HIGH (both included), for argparse."""

    low: int
    high: int

    def __call__(self, text: str) -> int:
        try:
            value = int(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from err
        if not self.low <= value <= self.high:
            raise argparse.ArgumentTypeError(f"must be {self} (got {value})")
        return value

    def __str__(self) -> str:
        return f"{self.low} to {self.high}"


@dataclass(frozen=True, slots=True)
class Number:
    """A finite number from LOW to HIGH (both included), for argparse."""

    low: float
    high: float

    def __call__(self, text: str) -> float:
        try:
            value = float(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from err
        if not math.isfinite(value) or not self.low <= value <= self.high:  # also refuses nan and inf
            raise argparse.ArgumentTypeError(f"must be {self} (got {text})")
        return value

    def __str__(self) -> str:
        return f"{self.low:g} to {self.high:g}"


class OneValue(argparse.Action):
    """argparse's plain `store`, except that `--option=--` is a usage error.

    Python 3.11's argparse drops a `--` given as an option's value and stores an empty list, which the type
    check never sees.
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        # Only a one-value option comes out as a list by mistake; positionals with nargs are lists on purpose.
        if isinstance(values, list) and option_string is not None and self.nargs is None:
            parser.error(f"argument {option_string}: expected one value")
        setattr(namespace, self.dest, values)


def refuse_empty_values(parser: argparse.ArgumentParser) -> None:
    """Options PARSER adds from now on (groups included) store through `OneValue`."""
    parser.register("action", "store", OneValue)
    parser.register("action", None, OneValue)


MIN_WIDTH = 420
MIN_HEIGHT = 420
MIN_FPS = 10.0

SEED = Whole(0, 2**32 - 1)
PUTTS = Whole(1, 1000)
SESSIONS = Whole(1, 100)
RECORD_SECONDS = Number(1, 86_400)  # a day at 640x480 is about 5 GB of clip: longer is a typo
IMAGES = Whole(1, 1_000_000)
WIDTH = Whole(MIN_WIDTH, 3840)
HEIGHT = Whole(MIN_HEIGHT, 2160)
FPS = Number(MIN_FPS, 120.0)
SHARE = Number(0.0, 1.0)
IMGSZ = Whole(32, 2048)


def check_output_folder(folder: Path) -> Path:
    """Create FOLDER (and its parents) now, or raise OutputError saying why it cannot be."""
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"output folder {folder} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create the output folder {folder}: {err.strerror or err}") from err
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write into the output folder {folder}: permission denied")
    return folder.resolve()


def read_image(path: Path) -> Image:
    """The still at PATH, or a clear error: missing (exit 66) or not an image (exit 65)."""
    if not path.is_file():
        raise InputMissingError(f"image file not found: {path}")
    image: Image | None = cv2.imread(str(path))
    if image is None:
        raise InputDataError(f"{path}: not a readable image")
    return image
