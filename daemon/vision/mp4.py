"""Frames into an H.264 mp4 through ffmpeg, at a constant frame rate: the clips `process` reads back."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path

from daemon.errors import CameraError
from daemon.models import Image


class Mp4Writer:
    """Raw BGR frames of one size into ffmpeg's libx264."""

    def __init__(self, path: Path, width: int, height: int, fps: float) -> None:
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            raise CameraError("ffmpeg is needed to write mp4 clips (apt-get install ffmpeg)")
        command = [
            ffmpeg, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "bgr24",
            "-s", f"{width}x{height}", "-r", f"{fps}", "-i", "-", "-c:v", "libx264", "-preset", "veryfast",
            "-crf", "20", "-pix_fmt", "yuv420p", "-threads", "1", "-f", "mp4", str(path),
        ]  # fmt: skip
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE)

    def write(self, image: Image) -> None:
        assert self._process.stdin is not None  # noqa: S101  # opened with stdin=PIPE
        try:
            self._process.stdin.write(image.tobytes())
        except BrokenPipeError as err:
            raise CameraError(f"ffmpeg stopped taking frames (exit code {self._process.wait()})") from err

    def close(self) -> None:
        assert self._process.stdin is not None  # noqa: S101  # opened with stdin=PIPE
        with contextlib.suppress(BrokenPipeError):  # ffmpeg gone: its exit code says why
            self._process.stdin.close()
        if self._process.wait() != 0:
            raise CameraError(f"ffmpeg failed with exit code {self._process.returncode}")
