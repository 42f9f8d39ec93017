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


# Three drift checks on a simulated still frame, each on a worker thread of its own as the live service runs
# them, then release_free_memory. argv: "bound" to call bound_heap_growth first. Prints RSS (MB) before the
# checks and after each.
DRIFT_PROBE = """
import json, sys, threading
import cv2
from daemon.memory import bound_heap_growth, release_free_memory
from daemon.paths import shipped_file
from daemon.sim.clip import ClipSpec, build_clip
from daemon.vision.calibration import load_calibration
from daemon.vision.drift import estimate_drift

def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024

if sys.argv[1] == "bound":
    assert bound_heap_growth()
cv2.setNumThreads(1)
_, renderer, timeline = build_clip(ClipSpec(seed=0, putts=1, width=640, height=480, fps=30, default_rig=True))
image = renderer.render(0.0, timeline.balls(0.0), timeline.occluders(0.0))
calibration = load_calibration(shipped_file("config/calibration.json")).scaled(640, 480)

def check():
    estimate_drift(image, calibration, None)
    release_free_memory()

estimate_drift(image, calibration, None)  # the caches any first call fills are not what is measured
release_free_memory()
after = [rss()]
for _ in range(3):
    thread = threading.Thread(target=check)
    thread.start()
    thread.join()
    after.append(rss())
print(json.dumps(after))
"""


def drift_checks_rss(mode: str) -> list[float]:
    result = subprocess.run(
        [sys.executable, "-c", DRIFT_PROBE, mode], cwd=REPO, capture_output=True, text=True, timeout=120,
        check=True, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    rss: list[float] = json.loads(result.stdout)
    return rss


def test_memory_drift_checks_on_fresh_threads_keep_no_peak() -> None:
    unbound = drift_checks_rss("free")
    bound = drift_checks_rss("bound")
    # Left to glibc, a check's thread keeps the top of its arena at the check's peak.
    assert max(unbound) - unbound[0] > 8
    assert max(bound) - bound[0] < 2
