"""Freed memory goes back to the system: a worker thread's arena does not stay at its peak."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

# A worker thread builds and frees many mid-sized images, as a drift check does; RSS is read after it ends,
# and again after release_free_memory. argv: nothing. Prints one JSON line.
PROBE = """
import json, threading
import numpy as np
from daemon.memory import release_free_memory

def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024

def work():
    # The first big free raises glibc's mmap threshold, so the images after it come from the arena.
    del_me = np.ones(4 << 20, np.uint8)
    del del_me
    images = [np.ones((480, 640), np.float32) for _ in range(24)]
    del images

before = rss()
thread = threading.Thread(target=work)
thread.start()
thread.join()
kept = rss()
released = release_free_memory()
print(json.dumps({"before": before, "kept": kept, "after": rss(), "released": released}))
"""


def test_memory_a_worker_thread_freed_is_returned() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
        env={"MALLOC_ARENA_MAX": "2", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    numbers = json.loads(result.stdout)
    assert numbers["released"] is True
    assert numbers["kept"] - numbers["before"] > 15  # without the release the thread's arena keeps it
    assert numbers["after"] - numbers["before"] < 5
