"""`TimedSource`: the one-shot commands' camera read, which gives up on a camera that stops sending.

A real video file and the simulated camera, whose `stall_at` blocks a read for an hour the way a USB
camera's driver can; the commands themselves are tested in tests/commands/test_record.py and test_snapshot.py.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from daemon.errors import CameraError
from daemon.models import Frame
from daemon.sim.clip import ClipSpec, SimulatedCamera
from daemon.vision.camera import VideoFileSource
from daemon.vision.timed_source import TimedSource
from tests.vision.test_camera import write_video


def test_a_file_is_read_whole_in_order_then_ends_and_is_closed(tmp_path: Path) -> None:
    closed = threading.Event()
    video = VideoFileSource(write_video(tmp_path / "clip.avi", frames=12, fps=20.0))
    close_file = video.close

    def close() -> None:
        close_file()
        closed.set()

    video.close = close  # type: ignore[method-assign]  # to see the reader thread close it
    source = TimedSource(video, 1.0, "clip.avi")
    frames: list[Frame] = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    assert [f.index for f in frames] == list(range(12))
    assert source.read() is None  # at once: an ended source does not wait out the stall time again
    assert closed.wait(5.0)
    source.close()


def read_until_error(source: TimedSource) -> tuple[list[Frame], CameraError]:
    frames: list[Frame] = []
    while True:
        try:
            frame = source.read()
        except CameraError as error:
            return frames, error
        assert frame is not None
        frames.append(frame)


def test_a_hung_read_raises_after_the_stall_time_and_close_returns() -> None:
    camera = SimulatedCamera(ClipSpec(seed=1, putts=1, width=160, height=120), stall_at=0.2)
    source = TimedSource(camera, 0.5, "camera sim://")
    frames, error = read_until_error(source)
    assert str(error) == "camera sim:// sent no frame for 0.5 s"
    assert len(frames) >= 5  # the 0.2 s of frames before the stall (at 30 fps)
    began = time.monotonic()
    source.close()  # the reader is still inside the hung read: it is left behind
    assert time.monotonic() - began < 5.0


def test_an_error_from_the_source_is_raised_by_read() -> None:
    class Failing:
        def read(self) -> Frame | None:
            raise CameraError("camera /dev/video0 went away")

        def close(self) -> None:
            pass

    source = TimedSource(Failing(), 5.0, "camera /dev/video0")
    with pytest.raises(CameraError, match="went away"):
        source.read()
    assert source.read() is None
    source.close()
