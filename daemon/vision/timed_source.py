"""A frame source whose reads give up: the one-shot commands' guard against a camera that stops sending.

The service reads its camera through `FrameGrabber`, which reopens a lost camera. `record` and `snapshot`
read once and stop, so they need only the other half: a read that returns within `stall_seconds`. A V4L2
read can block in the driver for good, and a capture is not safe to use from two threads, so one reader
thread alone reads and closes the source; a read hung in the driver is abandoned with its (daemon) thread.
"""

from __future__ import annotations

import queue
import threading

from daemon.errors import CameraError
from daemon.models import Frame
from daemon.vision.camera import FrameSource

_PUT_SECONDS = 0.1  # how often a reader waiting to hand over a frame looks whether it should stop
_JOIN_SECONDS = 1.0  # close() waits this long for the reader to finish its read


class TimedSource:
    """SOURCE read on its own thread; `read()` raises `CameraError` after STALL_SECONDS without a frame."""

    def __init__(self, source: FrameSource, stall_seconds: float, name: str) -> None:
        self._source, self._stall_seconds, self._name = source, stall_seconds, name
        self._items: queue.Queue[Frame | Exception | None] = queue.Queue(maxsize=1)
        self._stopping = threading.Event()
        self._ended = False
        self._reader = threading.Thread(target=self._read_ahead, name="camera-read", daemon=True)
        self._reader.start()

    def read(self) -> Frame | None:
        """The next frame, None when the source has ended; raises CameraError when it fails or stalls."""
        if self._ended:
            return None
        try:
            item = self._items.get(timeout=self._stall_seconds)
        except queue.Empty:
            raise CameraError(f"{self._name} sent no frame for {self._stall_seconds:g} s") from None
        if isinstance(item, Exception):
            self._ended = True
            raise item
        self._ended = item is None
        return item

    def close(self) -> None:
        """Stop the reader; it closes the source after its current read, or never if that read is hung."""
        self._stopping.set()
        self._reader.join(_JOIN_SECONDS)

    def _read_ahead(self) -> None:
        try:
            while not self._stopping.is_set():
                item: Frame | Exception | None
                try:
                    item = self._source.read()
                except Exception as err:  # noqa: BLE001  # handed to the caller, who reports it
                    item = err
                if not self._hand_over(item) or not isinstance(item, Frame):
                    return
        finally:
            self._source.close()

    def _hand_over(self, item: Frame | Exception | None) -> bool:
        while not self._stopping.is_set():
            try:
                self._items.put(item, timeout=_PUT_SECONDS)
            except queue.Full:
                continue
            return True
        return False
