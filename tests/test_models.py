"""The typed records: a putt's Proof of Putt detail string is derived from its kind, lanes and quadrant."""

from __future__ import annotations

import pytest

from daemon.models import PuttEvent


@pytest.mark.parametrize(
    ("event", "detail", "outcome"),
    [
        (PuttEvent("HOLE", 0, 1, "CENTER", None, "TOP"), "MAKE - HOLE: TOP - CENTER", "MAKE"),
        (PuttEvent("CATCH", 0, 1, "LEFT", "RIGHT"), "MISS - CATCH: LEFT - RIGHT", "MISS"),
        (PuttEvent("RETURN", 0, 1, "RIGHT", "UNKNOWN"), "MISS - RETURN: RIGHT - UNKNOWN", "MISS"),
        (PuttEvent("TIMEOUT", 0, 1, "RAMP"), "MISS - TIMEOUT: RAMP", "MISS"),
        (PuttEvent("QUICK_PUTT", 0, 1, "CENTER"), "MISS - QUICK PUTT", "MISS"),
    ],
)
def test_detail_string_is_derived_from_the_typed_fields(event: PuttEvent, detail: str, outcome: str) -> None:
    assert event.detail == detail
    assert event.outcome == outcome
    assert event.is_make == (outcome == "MAKE")


@pytest.mark.parametrize(
    "build",
    [
        lambda: PuttEvent("HOLE", 0, 1, "CENTER"),
        lambda: PuttEvent("CATCH", 0, 1, "CENTER"),
        lambda: PuttEvent("TIMEOUT", 0, 1, "CENTER", None, "TOP"),
        lambda: PuttEvent("TIMEOUT", 0, 1, "CENTER", "LEFT"),
    ],
)
def test_a_putt_that_cannot_be_described_is_refused(build: object) -> None:
    with pytest.raises(ValueError, match="putt has"):
        build()  # type: ignore[operator]  # parametrised callables
