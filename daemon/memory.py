"""Handing memory that Python and OpenCV freed back to the system.

glibc keeps freed heap pages in the arena of the thread that used them. A worker thread that runs a large
computation now and then (a drift check builds a dozen full-frame images) would leave its arena at its peak
for the life of the service, which on a box running for months reads as growth. `malloc_trim` returns those
pages; elsewhere than glibc there is nothing to do.

`malloc_trim` does not shrink the top of a worker thread's arena, though: glibc gives that back only on
`free`, once it exceeds a trim threshold that glibc raises by itself after the first large block is freed. A
service that starts a drift check every few minutes would keep the peak of one of them for good.
`bound_heap_growth` pins both thresholds, so the tops of the arenas are given back as a check ends.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Free bytes an arena's top may keep: room for a few frames, so the loop makes no syscalls.
TRIM_THRESHOLD = 8 << 20
MMAP_THRESHOLD = 4 << 20  # larger blocks get a mapping of their own (a 1280x720 frame stays below)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    return None if name is None else ctypes.CDLL(name)


def bound_heap_growth() -> bool:
    """Pin glibc's trim and mmap thresholds for the life of the process; whether the C library could."""
    libc = _libc()
    mallopt = None if libc is None else getattr(libc, "mallopt", None)
    if mallopt is None:  # not glibc
        return False
    return bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    )


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    libc = _libc()
    trim: Callable[[int], int] | None = None if libc is None else getattr(libc, "malloc_trim", None)
    return trim


def release_free_memory() -> bool:
    """Return freed heap pages of every arena to the system; whether the C library could."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
