"""Camera stage: turns the configured source into a stream of `Frame`s.

Every source kind implements `FrameSource`; `read()` returns the next frame, or None when a finite source
(a file, a scripted simulation) has ended. A file's frames carry their position in the file as timestamp, so
replaying is independent of CPU speed; a live camera's frames carry UTC epoch seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import cv2

from daemon.errors import CameraError
from daemon.models import Frame

logger = logging.getLogger(__name__)

SourceKind = Literal["device", "file", "stream", "sim"]


class FrameSource(Protocol):
    """Anything that yields frames."""

    def read(self) -> Frame | None:
        """The next frame, or None when the source has ended."""
        ...

    def close(self) -> None:
        """Release the device or file."""
        ...


@dataclass(frozen=True, slots=True)
class CameraConfig:
    """The camera settings slice."""

    source: str
    width: int = 640
    height: int = 480
    fps: float = 30.0
    fourcc: str = "MJPG"


def source_kind(source: str) -> SourceKind:
    """Which kind of source a camera setting names."""
    scheme = source.partition("://")[0].lower() if "://" in source else ""
    if scheme == "sim":
        return "sim"
    if scheme in {"rtsp", "rtsps", "http", "https"}:
        return "stream"
    if source.isdigit() or source.startswith("/dev/"):
        return "device"
    return "file"


class VideoFileSource:
    """Frames of a video file, timestamped by their position in the file."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise CameraError(f"video file not found: {path}")
        self._capture = cv2.VideoCapture(str(path))
        if not self._capture.isOpened():
            raise CameraError(f"cannot open video file: {path}")
        fps = float(self._capture.get(cv2.CAP_PROP_FPS))
        self.fps = fps if fps > 0 else 30.0
        self.frame_count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self._index = 0

    def read(self) -> Frame | None:
        ok, image = self._capture.read()
        if not ok:
            return None
        frame = Frame(self._index, self._index / self.fps, image)
        self._index += 1
        return frame

    def close(self) -> None:
        self._capture.release()


class LiveCaptureSource:
    """A USB camera or a network stream, timestamped with the wall clock at capture."""

    def __init__(self, config: CameraConfig, clock: Callable[[], float] = time.time) -> None:
        target: int | str = int(config.source) if config.source.isdigit() else config.source
        self._capture = cv2.VideoCapture(target)
        if not self._capture.isOpened():
            raise CameraError(f"cannot open camera {config.source!r}")
        if source_kind(config.source) == "device":
            if config.fourcc:
                self._capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*config.fourcc))
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, config.width)
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, config.height)
            self._capture.set(cv2.CAP_PROP_FPS, config.fps)
        self._clock = clock
        self._index = 0

    def read(self) -> Frame | None:
        ok, image = self._capture.read()
        if not ok:
            raise CameraError("camera stopped delivering frames")
        frame = Frame(self._index, self._clock(), image)
        self._index += 1
        return frame

    def close(self) -> None:
        self._capture.release()


def open_source(config: CameraConfig) -> FrameSource:
    """Open the source the camera setting names."""
    kind = source_kind(config.source)
    if kind == "sim":
        from daemon.sim.clip import SimulatedCamera  # noqa: PLC0415  # the simulator loads only when asked for

        return SimulatedCamera.from_url(config.source, config.width, config.height, config.fps)
    if kind == "file":
        return VideoFileSource(Path(config.source.removeprefix("file://")))
    return LiveCaptureSource(config)
