"""The newest frame as a JPEG: for `putt-daemon snapshot` (through SIGUSR1 and the state folder) and for the
MQTT `snapshot` command. A snapshot shows the room, so it is written readable by the service's group only."""

from __future__ import annotations

from pathlib import Path

import cv2

from daemon.atomicfile import write_atomic
from daemon.models import Frame
from daemon.vision.calibration import Calibration
from daemon.vision.overlay import draw_regions

SNAPSHOT_FILE = "snapshot.jpg"  # under the state folder
JPEG_QUALITY = 90


def frame_jpeg(frame: Frame, regions: Calibration | None) -> bytes | None:
    """FRAME as JPEG, with REGIONS drawn and labelled when given; None if it cannot be encoded."""
    image = frame.image
    if regions is not None:
        image = image.copy()
        draw_regions(image, regions, labels=True)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return bytes(encoded) if ok else None


def write_snapshot(state_dir: Path, picture: bytes) -> Path:
    """Write PICTURE as the state folder's snapshot; its path. Raises OSError."""
    path = state_dir / SNAPSHOT_FILE
    write_atomic(path, picture, mode=0o640)
    return path
