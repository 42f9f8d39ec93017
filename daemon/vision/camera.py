"""Camera stage: turns the configured source into `Frame`s.

Every source kind implements `FrameSource`: `read()` returns the next frame, or None when the source has
ended, and raises `CameraError` when it fails. `live_openers()` is the registry the service picks from by
`source_kind()`; the service adds "sim" itself, so this module never loads the simulator. Live sources are
read on a thread by `daemon.vision.grabber.FrameGrabber`, which reopens them when they fail.

A file replayed by the `process` command (`VideoFileSource`) carries its position in the file as timestamp,
so replaying is independent of CPU speed; live sources carry seconds on the monotonic clock. A source is
named in logs and errors only through `mask_url`, so a camera password never reaches the journal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import cv2

from daemon.errors import CameraError, InputDataError
from daemon.models import Frame, Image
from daemon.redact import mask_url

logger = logging.getLogger(__name__)

SourceKind = Literal["device", "file", "stream", "sim"]

# userinfo in `scheme://user:pass@host`, and query values that commonly carry secrets (`?user=..&pwd=..`).


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
    stall_seconds: float = 5.0  # no frame for this long and the camera counts as lost


Opener = Callable[[CameraConfig], FrameSource]


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


def _fourcc_text(code: float) -> str:
    """The four characters of an OpenCV fourcc property ("" when the backend does not say)."""
    raw = int(code).to_bytes(4, "little", signed=False) if 0 < code < 2**32 else b""
    return raw.decode("ascii", "replace").strip("\x00 ")


def _log_delivered(name: str, capture: cv2.VideoCapture, asked: str) -> None:
    """One line with what the source actually delivers: cameras silently pick their nearest mode."""
    logger.info(
        "camera %s opened: %dx%d at %.1f fps, %s%s",
        name,
        int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        float(capture.get(cv2.CAP_PROP_FPS)),
        _fourcc_text(capture.get(cv2.CAP_PROP_FOURCC)) or "fourcc unknown",
        asked,
    )


class VideoFileSource:
    """Frames of a video file, timestamped by their position in the file.

    A damaged stretch does not end the file: a failed read before `frame_count` grabs forward, at most as
    many times as frames are left, until a frame decodes again. From the first damage on, a frame's index
    comes from its timestamp in the file, so the frames after a gap keep their true times. `decoded` counts
    the frames delivered and `gaps` lists the index ranges (first, last) that never came, the end included.
    """

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise CameraError(f"video file not found: {path}")
        self._capture = cv2.VideoCapture(str(path))
        if not self._capture.isOpened():
            # A truncated mp4 whose index (moov) was to come at the end cannot be opened at all.
            raise InputDataError(f"video file is not a readable video (damaged or cut short?): {path}")
        fps = float(self._capture.get(cv2.CAP_PROP_FPS))
        self.fps = fps if fps > 0 else 30.0
        self.frame_count = max(0, int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT)))
        self.size = (
            int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
        self.decoded = 0
        self.gaps: list[tuple[int, int]] = []
        self._index = 0  # the index the next frame has if nothing is missing
        self._damaged = False
        self._ended = False

    def read(self) -> Frame | None:
        if self._ended:
            return None
        ok, image = self._capture.read()
        if not ok:
            ok, image = self._read_past_damage()
        if not ok:
            self._end()
            return None
        index = self._index
        if self._damaged:
            # The container's timestamp of the frame just decoded; never backwards, never a repeated index.
            index = max(index, round(self._capture.get(cv2.CAP_PROP_POS_MSEC) * self.fps / 1000))
        if index > self._index:
            self.gaps.append((self._index, index - 1))
        self._index = index + 1
        self.decoded += 1
        return Frame(index, index / self.fps, image)

    def _read_past_damage(self) -> tuple[bool, Image | None]:
        # Each failed grab consumes at least one packet, so the frames left bound the attempts.
        for _ in range(self.frame_count - self._index):
            self._damaged = True
            if self._capture.grab():
                ok, image = self._capture.retrieve()
                if ok:
                    return True, image
        return False, None

    def _end(self) -> None:
        self._ended = True
        if self._index < self.frame_count:
            self.gaps.append((self._index, self.frame_count - 1))

    def close(self) -> None:
        self._capture.release()


class PacedFileSource:
    """A video file played as a live camera: one frame per 1/fps on the monotonic clock, None at the end."""

    def __init__(
        self,
        config: CameraConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        path = Path(config.source.removeprefix("file://"))
        self._file = VideoFileSource(path)
        self._clock, self._sleep = clock, sleep
        self._start: float | None = None  # clock time of the file's position 0
        logger.info("camera %s opened: a video file at %.1f fps", mask_url(str(path)), self._file.fps)

    def read(self) -> Frame | None:
        frame = self._file.read()
        if frame is None:
            return None
        now = self._clock()
        if self._start is None:
            self._start = now - frame.timestamp
        due = self._start + frame.timestamp
        if due > now:
            self._sleep(due - now)
        elif now - due > 1.0 / self._file.fps:
            # Decoding fell behind: a camera would not deliver the missed frames in a burst, so restart the
            # schedule from here.
            self._start = now - frame.timestamp
        return Frame(frame.index, self._start + frame.timestamp, frame.image)

    def close(self) -> None:
        self._file.close()


class LiveCaptureSource:
    """A USB camera (V4L2) or a network stream (FFmpeg), timestamped with the clock at capture."""

    def __init__(self, config: CameraConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._name = mask_url(config.source)
        if source_kind(config.source) == "device":
            self._capture = self._open_device(config)
        else:
            # Bounded open and read, so a dead stream fails here instead of hanging the reader thread.
            limit_ms = max(1000, int(config.stall_seconds * 1000))
            self._capture = cv2.VideoCapture(
                config.source,
                cv2.CAP_FFMPEG,
                [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, limit_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, limit_ms],
            )
            if not self._capture.isOpened():
                raise CameraError(f"cannot open stream {self._name}")
            _log_delivered(self._name, self._capture, "")
        self._clock = clock
        self._index = 0

    def _open_device(self, config: CameraConfig) -> cv2.VideoCapture:
        source = config.source
        path = Path(f"/dev/video{source}" if source.isdigit() else source)
        # Checked first: OpenCV would only print a warning to stderr on every retry.
        if not path.exists():
            raise CameraError(f"no such camera device: {source}")
        device = path.resolve()  # /dev/v4l/by-id/... names a stable camera; the log shows which videoN it is
        if device != path:
            logger.info("camera %s is %s", source, device)
        capture = cv2.VideoCapture(str(device), cv2.CAP_V4L2)
        if not capture.isOpened():
            capture.release()
            raise CameraError(f"cannot open camera device {source} ({device})")
        # The fourcc goes first: a V4L2 camera offers its larger sizes and rates only in MJPG.
        if config.fourcc:
            capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*config.fourcc))
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, config.width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, config.height)
        capture.set(cv2.CAP_PROP_FPS, config.fps)
        asked = f" (asked {config.width}x{config.height} at {config.fps:.1f} fps, {config.fourcc or 'any'})"
        _log_delivered(str(device), capture, asked)
        return capture

    def read(self) -> Frame | None:
        ok, image = self._capture.read()
        if not ok:
            raise CameraError(f"camera {self._name} stopped delivering frames")
        frame = Frame(self._index, self._clock(), image)
        self._index += 1
        return frame

    def close(self) -> None:
        self._capture.release()


def live_openers() -> dict[SourceKind, Opener]:
    """The live source kinds this module opens; the service adds "sim" from `daemon.sim.clip`."""
    return {"device": LiveCaptureSource, "file": PacedFileSource, "stream": LiveCaptureSource}
