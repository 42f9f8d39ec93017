"""Drift watch: when to check a running camera for calibration drift, off the vision loop's hot path, and
what the service does with the answer.

A check is due on the first still frame (nothing moving, no putt under way) and then every `interval`
seconds of frame time. Live, the estimate runs on a worker thread of its own and its verdict is picked up on a
later still frame; replaying a file, it runs in line, so a replay gives the same answer at any speed.
`DriftFollow` keeps the latest verdict: the regions to count with (moved with the rig when it was followed),
the problem line while the calibration does not match, and the putts counted meanwhile.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from daemon.memory import release_free_memory
from daemon.models import Frame, Image, PuttEvent
from daemon.vision.calibration import Calibration
from daemon.vision.drift import (
    DriftConfig,
    DriftVerdict,
    SceneReference,
    estimate_drift,
    judge,
    reads_overhead,
    reference_path,
    transform_calibration,
)

logger = logging.getLogger(__name__)


class DriftWatch:
    """Runs drift checks on still frames and hands back each verdict once."""

    def __init__(self, config: DriftConfig, reference: SceneReference | None, *, background: bool) -> None:
        self._config = config
        self._reference = reference
        self._background = background
        self._running: threading.Thread | None = None
        self._result: DriftVerdict | None = None
        self._next_due: float | None = None  # frame time of the next check; None: the first still frame
        self._unjudgeable = False  # no reference, and a view the proposal cannot read: never checked

    @property
    def has_reference(self) -> bool:
        return self._reference is not None

    def offer(self, frame: Frame, calibration: Calibration, *, still: bool) -> DriftVerdict | None:
        """Start a check on FRAME if one is due and the scene is STILL; return a verdict that is ready (on a
        still frame only, so the regions never change under a putt)."""
        if not still or self._unjudgeable:
            return None
        if self._reference is None and not reads_overhead(calibration):
            # Judged by the proposal, a view it cannot read would be "followed" to wherever it guessed.
            self._unjudgeable = True
            logger.info(
                "calibration drift not checked: no scene reference beside the calibration, and the automatic "
                "proposal reads only views from above (saving it from the calibration page stores one)"
            )
            return None
        ready = self._collect()
        if ready is not None or self._running is not None:
            return ready
        if self._next_due is not None and (self._config.interval <= 0 or frame.timestamp < self._next_due):
            return None
        self._next_due = frame.timestamp + self._config.interval
        if not self._background:
            return self._check(frame.image, calibration)
        # A daemon thread: a check under way (seconds on a small CPU) never holds up a stop.
        image = frame.image.copy()
        self._running = threading.Thread(
            target=self._check_aside, args=(image, calibration), name="drift-check", daemon=True
        )
        self._running.start()
        return None

    def _check_aside(self, image: Image, calibration: Calibration) -> None:
        self._result = self._check(image, calibration)
        del image
        release_free_memory()  # this thread's arena would otherwise keep the check's peak

    def _collect(self) -> DriftVerdict | None:
        running = self._running
        if running is None or running.is_alive():
            return None
        self._running = None
        result, self._result = self._result, None
        return result

    def _check(self, image: Image, calibration: Calibration) -> DriftVerdict | None:
        try:
            estimate = estimate_drift(image, calibration, self._reference)
        except Exception:  # the top of a worker: a failed check must not stop counting
            logger.exception("calibration drift check failed")
            return None
        return judge(estimate, self._config, (image.shape[1], image.shape[0]))

    def close(self) -> None:
        """Forget a check under way: its thread ends by itself, or with the process."""
        self._running = None


class DriftFollow:
    """The service's side of drift: the latest verdict and what follows from it."""

    def __init__(self, config: DriftConfig, calibration_file: Path, *, background: bool) -> None:
        reference = SceneReference.load(reference_path(calibration_file))
        self._watch = DriftWatch(config, reference, background=background)
        self.verdict: DriftVerdict | None = None
        self._under_drift: set[float] = set()

    def offer(self, frame: Frame, calibration: Calibration, *, still: bool) -> bool:
        """Let the watch look at FRAME (CALIBRATION at its size); True when a check has just finished."""
        verdict = self._watch.offer(frame, calibration, still=still)
        if verdict is None:
            return False
        before, self.verdict = self.verdict, verdict
        if before is None or before.state != verdict.state:
            level = logging.INFO if verdict.state == "still" else logging.WARNING
            logger.log(level, "calibration drift check: %s", verdict.describe())
        return True

    def counting(self, calibration: Calibration) -> Calibration:
        """The regions to count with: CALIBRATION, moved with the rig when it was followed."""
        verdict = self.verdict
        if verdict is None or verdict.state != "followed" or verdict.estimate is None:
            return calibration
        return transform_calibration(calibration, verdict.estimate.matrix)

    @property
    def problem(self) -> str | None:
        """The line for the service's problems while the calibration does not match the scene."""
        if self.verdict is None or self.verdict.state != "mismatch":
            return None
        return f"calibration drift: {self.verdict.describe()}; putts are marked as counted under drift"

    def note(self, putt: PuttEvent) -> None:
        """Remember PUTT as counted under drift if the calibration does not match now."""
        if self.verdict is not None and self.verdict.state == "mismatch":
            self._under_drift.add(putt.start_time)

    @property
    def under_drift(self) -> frozenset[float]:
        """Start times of the putts counted while the calibration did not match."""
        return frozenset(self._under_drift)

    def state_fields(self) -> dict[str, Any]:
        """The drift fields of the service's state."""
        verdict = self.verdict
        if verdict is None:
            return {}
        estimate = verdict.estimate
        return {
            "calibration_drift": "none" if verdict.state == "still" else verdict.state,
            "calibration_shift": None if estimate is None else tuple(round(v, 1) for v in estimate.shift),
            "calibration_drift_detail": verdict.describe(),
        }

    def describe(self) -> str:
        """The latest check's line, "" before the first."""
        return "" if self.verdict is None else self.verdict.describe()

    def close(self) -> None:
        """Stop watching."""
        self._watch.close()
