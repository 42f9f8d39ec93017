"""Session statistics against brute-force readings of the Proof of Putt definitions (shared README)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.delivery.stats import (
    STREAK_THRESHOLDS,
    fastest_span,
    longest_run,
    miss_category,
    most_in_window,
    per_minute,
    streak_counts,
)
from daemon.models import PuttKind
from tests.conftest import brute_fastest_21, brute_longest, brute_most_in_60, brute_streaks

PROPERTY = settings(max_examples=200, deadline=None)

# Steps between putts: exact repeats (equal times), round values that land exactly on the 60 s window edge,
# and arbitrary floats.
_STEPS = st.one_of(st.sampled_from([0.0, 0.5, 1.0, 2.5, 10.0, 60.0]), st.floats(0.0, 30.0))


@st.composite
def sorted_times(draw: st.DrawFn, max_size: int = 120) -> list[float]:
    """Ascending times with duplicates, often more than 21 of them."""
    base = draw(st.floats(0.0, 1e4))
    # Half short lists, half long enough for a fastest-21 value.
    size = draw(st.one_of(st.integers(0, 20), st.integers(21, max_size)))
    steps = draw(st.lists(_STEPS, min_size=size, max_size=size))
    return list(itertools.accumulate(steps, initial=base))[1:]


@st.composite
def make_sequences(draw: st.DrawFn) -> list[bool]:
    """Makes and misses, with runs long enough to reach every streak threshold up to 100."""
    runs = draw(st.lists(st.tuples(st.integers(0, 110), st.integers(1, 3)), max_size=6))
    sequence = [made for length, misses in runs for made in [True] * length + [False] * misses]
    if draw(st.booleans()) and sequence:
        sequence.pop()  # sometimes end on a make run
    return sequence


@PROPERTY
@given(make_sequences())
def test_streaks_and_longest_run_match_brute_force(makes: list[bool]) -> None:
    assert streak_counts(makes) == brute_streaks(makes)
    assert longest_run(makes) == brute_longest(makes)


@PROPERTY
@given(st.lists(st.booleans(), max_size=60))
def test_streaks_on_short_random_sequences(makes: list[bool]) -> None:
    assert streak_counts(makes) == brute_streaks(makes)
    assert longest_run(makes) == brute_longest(makes)


@PROPERTY
@given(sorted_times())
def test_fastest_21_matches_brute_force(times: list[float]) -> None:
    assert fastest_span(times) == brute_fastest_21(times)


@PROPERTY
@given(sorted_times())
def test_most_in_60_matches_brute_force(times: list[float]) -> None:
    assert most_in_window(times) == brute_most_in_60(times)


def test_streak_examples() -> None:
    makes = [True] * 3 + [False] + [True] * 5 + [False, False] + [True] * 21
    assert streak_counts(makes) == {3: 3, 5: 2, 7: 1, 10: 1, 15: 1, 21: 1, 50: 0, 100: 0}
    assert longest_run(makes) == 21
    assert streak_counts([]) == dict.fromkeys(STREAK_THRESHOLDS, 0)


def test_window_edges_and_duplicates() -> None:
    assert most_in_window([0.0, 60.0, 60.0, 120.5]) == 3  # both ends of [t, t + 60] count
    assert most_in_window([5.0, 5.0, 5.0]) == 3
    assert most_in_window([]) == 0
    assert fastest_span([float(i) for i in range(20)]) is None
    assert fastest_span([0.0] * 21) == 0.0
    assert fastest_span([float(i) for i in range(21)] + [20.5, 21.0]) == 19.0


@pytest.mark.parametrize(
    ("kind", "category"),
    [
        ("HOLE", None),
        ("CATCH", "CATCH"),
        ("TIMEOUT", "TIMEOUT"),
        ("RETURN", "RETURN"),
        ("QUICK_PUTT", "QUICK_PUTT"),
    ],
)
def test_miss_category(kind: PuttKind, category: str | None) -> None:
    assert miss_category(kind) == category


def test_per_minute_is_zero_without_duration() -> None:
    assert per_minute(3, 0.0) == 0.0
    assert per_minute(3, 90.0) == 2.0
