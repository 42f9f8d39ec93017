"""Camera stage: turns a configured source into a stream of `Frame`s.

Every source kind implements `FrameSource`; `read()` returns the next frame, or None when a finite source
(a file, a scripted simulation) has ended.
"""

from __future__ import annotations

from typing import Protocol

from daemon.models import Frame


class FrameSource(Protocol):
    """Anything that yields frames."""

    def read(self) -> Frame | None:
        """The next frame, or None when the source has ended."""
        ...

    def close(self) -> None:
        """Release the device or file."""
        ...
