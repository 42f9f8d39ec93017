"""Handing memory that Python and OpenCV freed back to the system.

glibc keeps freed heap pages in the arena of the thread that used them. A worker thread that runs a large
computation now and then (a drift check builds a dozen full-frame images) would leave its arena at its peak
for the life of the service, which on a box running for months reads as growth. `malloc_trim` returns those
pages; elsewhere than glibc there is nothing to do.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim


def release_free_memory() -> bool:
    """Return freed heap pages of every arena to the system; whether the C library could."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
