"""The live camera stage: newest frame only, a lost camera is reported once and reopened, no credentials leak.

Real parts throughout: the simulator's live camera, video files written with OpenCV, OpenCV's own V4L2 and
FFmpeg backends against a device and a port that are not there.
"""

from __future__ import annotations

import itertools
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from daemon.errors import CameraError
from daemon.models import Frame
from daemon.redact import mask_url
from daemon.sim.clip import ClipSpec, SimulatedCamera
from daemon.vision.camera import (
    CameraConfig,
    FrameSource,
    Opener,
    PacedFileSource,
    live_openers,
    source_kind,
)
from daemon.vision.grabber import FrameGrabber
from tests.conftest import wait_until

SIM = "sim://?seed=1&putts=1"
Start = Callable[[CameraConfig, Opener], FrameGrabber]


def simulator(config: CameraConfig) -> FrameSource:
    return SimulatedCamera.from_url(config.source, config.width, config.height, config.fps)


def write_video(path: Path, frames: int, fps: float) -> Path:
    """A small MJPG video, written beside PATH and moved in, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp.avi")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"MJPG"), fps, (64, 48))
    assert writer.isOpened()
    for f in range(frames):
        writer.write(np.full((48, 64, 3), f * 10 % 256, np.uint8))
    writer.release()
    tmp.replace(path)
    return path


def messages(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level and text in r.getMessage()]


@pytest.fixture
def start() -> Iterator[Start]:
    """Start a grabber; every one is stopped at the end, even when the test fails."""
    started: list[FrameGrabber] = []

    def make(config: CameraConfig, opener: Opener) -> FrameGrabber:
        grabber = FrameGrabber(config, opener)
        started.append(grabber)
        grabber.start()
        return grabber

    yield make
    for grabber in started:
        grabber.stop()


@pytest.mark.parametrize(
    ("source", "masked"),
    [
        ("rtsp://user:secret@cam.local:554/stream", "rtsp://***@cam.local:554/stream"),
        ("http://admin:p@ss@10.0.0.2/video", "http://***@10.0.0.2/video"),
        ("http://cam/video.cgi?user=admin&pwd=secret&res=hd", "http://cam/video.cgi?user=***&pwd=***&res=hd"),
        ("cannot open rtsp://u:secret@cam/s: refused", "cannot open rtsp://***@cam/s: refused"),
        ("rtsp://cam.local/stream", "rtsp://cam.local/stream"),
        ("/dev/v4l/by-id/usb-cam@1-video-index0", "/dev/v4l/by-id/usb-cam@1-video-index0"),
        ("0", "0"),
    ],
)
def test_mask_url_hides_credentials(source: str, masked: str) -> None:
    assert mask_url(source) == masked


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("0", "device"),
        ("/dev/video2", "device"),
        ("/dev/v4l/by-id/usb-x-index0", "device"),
        ("clip.mp4", "file"),
        ("rtsp://cam/s", "stream"),
        ("https://cam/mjpg", "stream"),
        ("sim://?seed=1", "sim"),
    ],
)
def test_source_kind(source: str, kind: str) -> None:
    assert source_kind(source) == kind


def test_the_camera_stage_does_not_load_the_simulator() -> None:
    code = (
        "import sys, daemon.vision.camera, daemon.vision.grabber\n"
        "assert not [m for m in sys.modules if m.startswith('daemon.sim')], sys.modules\n"
        "assert set(daemon.vision.camera.live_openers()) == {'device', 'file', 'stream'}\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_simulated_camera_stalls_once_when_asked() -> None:
    now = [1000.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    camera = SimulatedCamera(
        ClipSpec(seed=1, putts=1), clock=lambda: now[0], sleep=sleep, stall_at=1.0, stall_for=7.0
    )
    for _ in range(60):
        assert camera.read() is not None
    assert sleeps.count(7.0) == 1
    with pytest.raises(CameraError, match="stall_at must be a number of seconds"):
        SimulatedCamera.from_url("sim://?stall_at=soon", 640, 480, 30.0)


def test_a_slow_consumer_gets_only_the_newest_frame(start: Start) -> None:
    grabber = start(CameraConfig(SIM, 160, 120, 30.0), simulator)
    first = grabber.latest(0, 5.0)
    assert first is not None
    assert grabber.status == "ok"
    assert grabber.reason == ""
    seen = [first]
    for _ in range(5):
        time.sleep(0.2)
        frame = grabber.latest(seen[-1].index, 1.0)
        assert frame is not None
        # No backlog: what is handed out was captured just now, not when the consumer last asked.
        assert time.monotonic() - frame.timestamp < 0.25
        seen.append(frame)
    gaps = [b.index - a.index for a, b in itertools.pairwise(seen)]
    assert min(gaps) >= 3, gaps  # 0.2 s at 30 fps is about 6 frames; all but the newest were dropped
    assert grabber.latest(seen[-1].index + 1000, 0.05) is None


def test_a_stalled_camera_is_lost_reopened_and_recovers_with_one_line_each(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="daemon")
    # The simulated camera's read blocks for an hour after 0.5 s: a hung driver read, not an error.
    grabber = start(CameraConfig(SIM + "&stall_at=0.5", 160, 120, 30.0, stall_seconds=1.0), simulator)
    before = grabber.latest(0, 5.0)
    assert before is not None
    began = time.time()
    # The lost and reopening states last a few milliseconds here, easy to miss when polling; the log is not.
    assert wait_until(lambda: bool(messages(caplog, logging.INFO, "recovered after")), 0.5 + 1.0 + 3.0)
    assert grabber.status == "ok"
    after = grabber.latest(before.index, 2.0)
    grabber.stop()  # before the reopened camera stalls in its turn
    assert after is not None
    assert after.index > before.index
    lost = [r for r in caplog.records if r.levelno == logging.WARNING and "lost: no frame" in r.getMessage()]
    assert len(lost) == 1
    assert lost[0].created - began < 0.5 + 1.0 + 1.0
    recovered = messages(caplog, logging.INFO, "recovered after")
    assert len(recovered) == 1, recovered


def test_a_video_file_plays_paced_and_survives_being_removed(start: Start, tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.avi", frames=10, fps=20.0)  # half a second
    opens: list[float] = []

    def opener(config: CameraConfig) -> FrameSource:
        opens.append(time.monotonic())
        return PacedFileSource(config)

    grabber = start(CameraConfig(str(video), stall_seconds=1.0), opener)
    frames: list[Frame] = []
    deadline = time.monotonic() + 1.2
    while time.monotonic() < deadline:
        frame = grabber.latest(frames[-1].index if frames else 0, 1.0)
        assert frame is not None
        frames.append(frame)
    rate = (frames[-1].index - frames[0].index) / (frames[-1].timestamp - frames[0].timestamp)
    assert 14.0 < rate < 26.0  # the file's 20 fps, not as fast as it decodes
    assert len(opens) >= 2  # at its end the file was reopened, as a camera that keeps delivering

    video.unlink()
    assert wait_until(lambda: grabber.status != "ok", 2.0)
    tried = len(opens)
    time.sleep(2.5)
    assert grabber.status in ("lost", "reconnecting")
    assert "not found" in grabber.reason
    assert 1 <= len(opens) - tried <= 4  # backing off (0.5 s, 1 s, 2 s), not a tight loop

    write_video(video, frames=10, fps=20.0)
    assert wait_until(lambda: grabber.status == "ok", 5.0)
    assert grabber.reason == ""


@pytest.mark.parametrize("source", ["/dev/video99", "99", "/dev/v4l/by-id/usb-No_Such_Camera-video-index0"])
def test_an_absent_device_is_lost_and_start_does_not_raise(start: Start, source: str) -> None:
    grabber = start(CameraConfig(source, stall_seconds=1.0), live_openers()["device"])
    assert wait_until(lambda: grabber.status == "lost", 2.0)
    assert source in grabber.reason
    assert grabber.latest(0, 0.1) is None


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def leaky(config: CameraConfig) -> FrameSource:
    """An opener whose library error quotes the URL it was given, as some do."""
    raise OSError(f"connection refused: {config.source}\nsecond line")


@pytest.mark.parametrize("opener", [live_openers()["stream"], leaky], ids=["ffmpeg", "quoting-error"])
def test_a_lost_stream_never_logs_its_password(
    start: Start, caplog: pytest.LogCaptureFixture, opener: Opener
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"rtsp://user:secret@127.0.0.1:{closed_port()}/stream"
    grabber = start(CameraConfig(url, stall_seconds=1.0), opener)
    # The status turns first and the line is logged just after, outside the grabber's lock.
    assert wait_until(lambda: bool(messages(caplog, logging.WARNING, "lost")), 3.0)
    assert grabber.status in ("lost", "reconnecting")
    assert "secret" not in grabber.reason
    assert "\n" not in grabber.reason
    lost = messages(caplog, logging.WARNING, "lost")
    assert len(lost) == 1
    assert "rtsp://***@127.0.0.1" in lost[0]
    assert not [r for r in caplog.records if "secret" in r.getMessage() or "secret" in (r.exc_text or "")]


def test_stop_returns_while_a_read_is_hung(start: Start, caplog: pytest.LogCaptureFixture) -> None:
    grabber = start(CameraConfig(SIM + "&stall_at=0.2", 160, 120, 30.0, stall_seconds=30.0), simulator)
    first = grabber.latest(0, 5.0)
    assert first is not None
    while (frame := grabber.latest(first.index, 0.3)) is not None:  # until the read hangs
        first = frame
    began = time.monotonic()
    grabber.stop()
    assert time.monotonic() - began < 2.0
    assert messages(caplog, logging.WARNING, "hung")
