"""`VideoFileSource` on damaged files: it reads past a damaged stretch, frames keep their true positions,
and it counts what it decoded and which frames never came.

Real files: frames numbered in their pixels and encoded by ffmpeg, the same file with its middle overwritten,
remuxed with its index first and cut in half, and files that are no video at all.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from daemon.errors import CameraError, InputDataError
from daemon.models import Frame
from daemon.vision.camera import VideoFileSource

FRAMES, FPS, BITS, BLOCK = 300, 10, 9, 32


def numbered(index: int) -> np.ndarray:
    """A grey frame whose row of black and white squares spells INDEX in binary."""
    image = np.full((96, BITS * BLOCK), 128, np.uint8)
    for bit in range(BITS):
        image[32:64, bit * BLOCK : (bit + 1) * BLOCK] = 255 if index >> bit & 1 else 0
    return image


def number_of(frame: Frame) -> int:
    """The index a decoded frame shows."""
    centres = frame.image[48, BLOCK // 2 :: BLOCK, 0]
    return sum(1 << bit for bit, value in enumerate(centres[:BITS]) if value > 128)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FRAMES numbered frames in h264, a keyframe every 10, the index (moov) at the end as ffmpeg puts it."""
    path = tmp_path_factory.mktemp("clip") / "numbered.mp4"
    noise = np.random.default_rng(0)
    raw = b"".join(
        np.clip(numbered(i) + noise.integers(-20, 20, (96, BITS * BLOCK)), 0, 255).astype(np.uint8).tobytes()
        for i in range(FRAMES)
    )  # the noise makes each frame cost bytes, so damage in the file's middle hits the middle frames
    ffmpeg = shutil.which("ffmpeg") or "ffmpeg"
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{BITS * BLOCK}x96",
         "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-g", "10", "-pix_fmt", "yuv420p", str(path)],
        input=raw, check=True,
    )  # fmt: skip
    return path


def read_all(path: Path) -> tuple[VideoFileSource, list[Frame]]:
    source = VideoFileSource(path)
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    assert source.read() is None  # an ended source stays ended
    source.close()
    return source, frames


def test_a_whole_clip_has_no_gaps(clip: Path) -> None:
    source, frames = read_all(clip)
    assert source.frame_count == len(frames) == source.decoded == FRAMES
    assert source.gaps == []
    assert [f.index for f in frames] == [number_of(f) for f in frames] == list(range(FRAMES))
    assert source.size == (BITS * BLOCK, 96)
    assert source.fps == FPS


def test_a_damaged_middle_is_skipped_and_later_frames_keep_their_positions(
    clip: Path, tmp_path: Path
) -> None:
    data = clip.read_bytes()
    third = len(data) // 3
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(data[:third] + random.Random(0).randbytes(third) + data[2 * third :])
    source, frames = read_all(damaged)
    assert source.frame_count == FRAMES
    assert source.gaps, "a third of the file overwritten leaves frames missing"
    assert source.decoded == len(frames) < FRAMES
    assert source.decoded + sum(last - first + 1 for first, last in source.gaps) == FRAMES
    indices = [f.index for f in frames]
    assert indices == sorted(set(indices))
    assert all(f.timestamp == pytest.approx(f.index / FPS) for f in frames)
    # Frames next to the damage are the decoder's concealment (a copy of an earlier picture); a keyframe
    # interval away, each frame must show the number of its position.
    before = [f for f in frames if f.index < source.gaps[0][0] - 10]
    after = [f for f in frames if f.index > source.gaps[-1][1] + 10]
    assert len(before) > 10
    assert len(after) > 10, "the decoder picked up again after the damage"
    for frame in (*before, *after):
        assert number_of(frame) == frame.index


def test_a_clip_cut_short_reports_its_missing_end(clip: Path, tmp_path: Path) -> None:
    faststart = tmp_path / "faststart.mp4"
    ffmpeg = shutil.which("ffmpeg") or "ffmpeg"
    subprocess.run([ffmpeg, "-loglevel", "error", "-i", str(clip), "-c", "copy", "-movflags", "+faststart",
                    str(faststart)], check=True)  # fmt: skip
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(faststart.read_bytes()[: faststart.stat().st_size // 2])
    source, frames = read_all(cut)
    assert 0 < source.decoded == len(frames) < source.frame_count
    assert source.gaps[-1][1] == source.frame_count - 1


def test_a_file_that_is_no_video_is_bad_input_data(clip: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])  # its index was at the end
    text = tmp_path / "notes.mp4"
    text.write_text("no video here\n")
    for path in (truncated, text):
        with pytest.raises(InputDataError, match="not a readable video"):
            VideoFileSource(path)
    with pytest.raises(CameraError, match="video file not found"):
        VideoFileSource(tmp_path / "absent.mp4")
