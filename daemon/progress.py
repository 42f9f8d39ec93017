"""A one-line progress bar on stderr for the offline commands; silent when stderr is not a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Redraws `label [#####.....] done/total` at most ten times a second."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self._label = label
        self._total = max(total, 1)
        self._stream = stream or sys.stderr
        self._enabled = self._stream.isatty()
        self._last = 0.0
        self._start = time.monotonic()

    def update(self, done: int) -> None:
        """Show DONE of the total."""
        now = time.monotonic()
        if not self._enabled or (now - self._last < 0.1 and done < self._total):
            return
        self._last = now
        filled = int(30 * min(done, self._total) / self._total)
        rate = done / max(now - self._start, 1e-9)
        bar = "#" * filled + "." * (30 - filled)
        self._stream.write(f"\r{self._label} [{bar}] {done}/{self._total} {rate:.0f}/s")
        self._stream.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self._enabled:
            self._stream.write("\n")
            self._stream.flush()
