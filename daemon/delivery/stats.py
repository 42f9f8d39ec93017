"""Session statistics for the reports stage: pure functions over putt outcomes and times, each O(n).

The definitions are the Proof of Putt report's (shared README, "Session report statistics"); the tests check
each one against a brute-force reading of that definition. Times are seconds, sorted ascending.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from daemon.models import PuttKind

MissCategory = Literal["CATCH", "TIMEOUT", "RETURN", "QUICK_PUTT"]

STREAK_THRESHOLDS = (3, 5, 7, 10, 15, 21, 50, 100)
FASTEST_MAKES = 21
MAKES_WINDOW_SECONDS = 60.0
MISS_CATEGORIES: tuple[MissCategory, ...] = ("CATCH", "TIMEOUT", "RETURN", "QUICK_PUTT")


def longest_run(makes: Sequence[bool]) -> int:
    """The longest run of consecutive makes."""
    best = run = 0
    for made in makes:
        run = run + 1 if made else 0
        best = max(best, run)
    return best


def streak_counts(makes: Sequence[bool], thresholds: Sequence[int] = STREAK_THRESHOLDS) -> dict[int, int]:
    """For each threshold N, how many maximal runs of makes are at least N long."""
    counts = dict.fromkeys(thresholds, 0)
    run = 0
    # A trailing False closes a run that lasts to the end of the session.
    for made in [*makes, False]:
        if made:
            run += 1
            continue
        for threshold in thresholds:
            if run >= threshold:
                counts[threshold] += 1
        run = 0
    return counts


def fastest_span(times: Sequence[float], count: int = FASTEST_MAKES) -> float | None:
    """The shortest time spanned by `count` consecutive sorted times; None with fewer than `count`."""
    if len(times) < count:
        return None
    return min(times[i + count - 1] - times[i] for i in range(len(times) - count + 1))


def most_in_window(times: Sequence[float], window: float = MAKES_WINDOW_SECONDS) -> int:
    """The most sorted times within [t, t + window] for any of them as t (two pointers, O(n))."""
    best = end = 0
    for start, first in enumerate(times):
        while end < len(times) and times[end] <= first + window:
            end += 1
        # Equal times before `start` are missed here, but the first of them, as `start`, counted them all.
        best = max(best, end - start)
    return best


def miss_category(kind: PuttKind) -> MissCategory | None:
    """The report's miss bucket of a putt kind (None for a make)."""
    match kind:
        case "HOLE":
            return None
        case "CATCH" | "TIMEOUT" | "RETURN" | "QUICK_PUTT":
            return kind


def per_minute(count: int, seconds: float) -> float:
    """COUNT per minute over SECONDS; 0 when no time passed (a single putt at the start)."""
    return count / (seconds / 60) if seconds > 0 else 0.0
