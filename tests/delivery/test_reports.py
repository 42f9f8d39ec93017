"""Session reports: statistics end to end against brute force, exact JSON and CSV, atomic spool writes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.atomicfile import write_text_atomic
from daemon.delivery.reports import ReportContext, build_report, report_csv, report_json, write_report
from daemon.models import PuttEvent, Session
from tests.conftest import brute_fastest_21, brute_longest, brute_most_in_60, brute_streaks, putt_event

CONTEXT = ReportContext("Jane Doe", "jane@example.com", "0.1.0", "abc123def456", "cal789")
EPOCH = 1_700_000_000.0  # 2023-11-14T22:13:20Z

# Each detail string with the category a plain reading of the README gives it.
MAKES = {
    "MAKE - HOLE: TOP - CENTER": "TOP",
    "MAKE - HOLE: RIGHT - LEFT": "RIGHT",
    "MAKE - HOLE: LOW - RIGHT": "LOW",
    "MAKE - HOLE: LEFT - RAMP": "LEFT",
}
MISSES = {
    "MISS - CATCH: LEFT - RIGHT": "CATCH",
    "MISS - TIMEOUT: CENTER": "TIMEOUT",
    "MISS - RETURN: RIGHT - UNKNOWN": "RETURN",
    "MISS - QUICK PUTT": "QUICK_PUTT",
}
FLAT_NUMBERS = (
    "total_putts", "total_makes", "total_misses", "make_percentage", "best_streak",
    "session_duration_seconds", "putts_per_minute", "makes_per_minute", "most_makes_in_60_seconds",
)  # fmt: skip


def putt(t: float, detail: str) -> PuttEvent:
    return putt_event(detail, t - 1.5, t)


def session(putts: list[PuttEvent], session_id: str = "box-1_1700001000000") -> Session:
    start = putts[0].start_time if putts else 0.0
    end = max((p.time for p in putts), default=start)
    return Session(session_id, "box-1", start, end, EPOCH, tuple(putts), "idle")


def known_session() -> Session:
    """Eight putts, one of each kind, every 3 s from 1003.0; the session starts at 1000.0 (epoch +1000)."""
    details = [
        "MAKE - HOLE: TOP - CENTER", "MAKE - HOLE: LEFT - LEFT", "MAKE - HOLE: TOP - RIGHT",
        "MISS - CATCH: CENTER - LEFT", "MISS - TIMEOUT: RIGHT", "MAKE - HOLE: LOW - CENTER",
        "MISS - RETURN: LEFT - CENTER", "MISS - QUICK PUTT",
    ]  # fmt: skip
    putts = [putt(1003.0 + 3 * i, detail) for i, detail in enumerate(details)]
    return Session("box-1_1700001000000", "box-1", 1000.0, 1024.0, EPOCH, tuple(putts), "idle")


@st.composite
def sessions(draw: st.DrawFn) -> Session:
    """Random sessions: mostly makes, equal times allowed."""
    weighted = [*MAKES, *MAKES, *MAKES, *MISSES]
    # Half short sessions, half with enough putts for a fastest-21 value.
    size = draw(st.one_of(st.integers(1, 20), st.integers(35, 100)))
    kinds = draw(st.lists(st.sampled_from(weighted), min_size=size, max_size=size))
    steps = draw(st.lists(st.sampled_from([0.0, 1.0, 2.5, 7.5, 60.0]), min_size=size, max_size=size))
    lead = draw(st.sampled_from([0.0, 0.5, 4.25]))  # the first putt's start to its classification
    start = draw(st.floats(0.0, 1e6))
    t = start + lead
    putts = []
    for kind, step in zip(kinds, steps, strict=True):
        t += step
        putts.append(putt(t, kind))
    return Session("box-1_1", "box-1", start, t, EPOCH, tuple(putts), "idle")


@settings(max_examples=200, deadline=None)
@given(sessions())
def test_report_statistics_match_brute_force(s: Session) -> None:
    counted = list(s.putts)
    report = build_report(s, CONTEXT)
    times = [p.time - s.start_time for p in counted]
    makes = [p.outcome == "MAKE" for p in counted]
    make_times = [t for t, made in zip(times, makes, strict=True) if made]
    duration = times[-1]
    assert [(r.index, r.detail, r.time) for r in report.putts] == [
        (i, p.detail, t) for i, (p, t) in enumerate(zip(counted, times, strict=True), start=1)
    ]
    assert report.total_putts == len(counted)
    assert report.total_makes == sum(makes)
    assert report.total_misses == len(counted) - sum(makes)
    assert report.make_percentage == sum(makes) / len(counted) * 100
    assert report.duration_seconds == duration
    assert report.putts_per_minute == (len(counted) / (duration / 60) if duration else 0.0)
    assert report.makes_per_minute == (sum(makes) / (duration / 60) if duration else 0.0)
    assert report.max_consecutive == brute_longest(makes)
    assert dict(report.streaks) == brute_streaks(makes)
    assert report.fastest_21_makes_seconds == brute_fastest_21(make_times)
    assert report.most_makes_in_60_seconds == brute_most_in_60(make_times)
    assert dict(report.makes_by_category) == {
        q: [MAKES.get(p.detail) for p in counted].count(q) for q in MAKES.values()
    }
    assert dict(report.misses_by_category) == {
        c: [MISSES.get(p.detail) for p in counted].count(c) for c in MISSES.values()
    }

    data = json.loads(json.dumps(report_json(report), allow_nan=False))
    for name in FLAT_NUMBERS:
        assert type(data[name]) in (int, float), name
    assert data["fastest_21_makes_seconds"] == (
        None if len(make_times) < 21 else round(report.fastest_21_makes_seconds or 0, 2)
    )
    assert data["make_percentage"] == round(sum(makes) / len(counted) * 100, 2)


def test_known_session_json() -> None:
    data = report_json(build_report(known_session(), CONTEXT))
    time_stats = {
        "putts_per_minute": 20.0, "makes_per_minute": 10.0, "most_makes_in_60_seconds": 4,
        "fastest_21_makes_seconds": None,
    }  # fmt: skip
    assert data == {
        "session_id": "box-1_1700001000000",
        "device_id": "box-1",
        "started_at": "2023-11-14T22:30:00.000Z",
        "ended_at": "2023-11-14T22:30:24.000Z",
        "end_reason": "idle",
        "software_version": "0.1.0",
        "model_version": "abc123def456",
        "calibration_version": "cal789",
        "total_putts": 8,
        "total_makes": 4,
        "total_misses": 4,
        "make_percentage": 50.0,
        "best_streak": 3,
        "session_duration_seconds": 24.0,
        **time_stats,
        "session_info": {
            "player_name": "Jane Doe",
            "player_email": "jane@example.com",
            "report_generated_at": "2023-11-14T22:30:24.000Z",
            "session_duration_seconds": 24.0,
        },
        "analytic_stats": {
            "total_putts": 8,
            "total_makes": 4,
            "make_percentage": 50.0,
            "total_misses": 4,
            "miss_percentage": 50.0,
            "makes_by_category": {"TOP": 2, "RIGHT": 0, "LOW": 1, "LEFT": 1},
            "misses_by_category": {"CATCH": 1, "TIMEOUT": 1, "RETURN": 1, "QUICK_PUTT": 1},
        },
        "consecutive_stats": {
            "max_consecutive": 3,
            "streaks_over_3": 1,
            "streaks_over_5": 0,
            "streaks_over_7": 0,
            "streaks_over_10": 0,
            "streaks_over_15": 0,
            "streaks_over_21": 0,
            "streaks_over_50": 0,
            "streaks_over_100": 0,
        },
        "time_stats": time_stats,
        "putt_list": [
            {
                "Putt Index": i + 1,
                "Putt Classification": p.outcome,
                "Putt Detailed Classification": p.detail,
                "Putt Time": 3.0 + 3 * i,
            }
            for i, p in enumerate(known_session().putts)
        ],
    }


def test_known_session_csv() -> None:
    expected = "\r\n".join(
        [
            "Player Name,Jane Doe",
            "Report Generated At,2023-11-14T22:30:24.000Z",
            "",
            "Analytic Stats,",
            "Total Putts,8",
            "Total Makes,4",
            "Make Percentage,50.00%",
            "Total Misses,4",
            "Miss Percentage,50.00%",
            "",
            "Consecutive Stats,",
            "Max Consecutive Makes,3",
            "Streaks over 3,1",
            "Streaks over 5,0",
            "Streaks over 7,0",
            "Streaks over 10,0",
            "Streaks over 15,0",
            "Streaks over 21,0",
            "Streaks over 50,0",
            "Streaks over 100,0",
            "",
            "Time Stats,",
            "Session Duration (seconds),24.00",
            "Putts Per Minute,20.00",
            "Makes Per Minute,10.00",
            "Most Makes in 60 seconds,4",
            "Fastest 21 Makes (seconds),N/A",
            "",
            "Putt History,",
            "Putt Index,Time (s),Classification,Detailed Classification",
            "1,3.00,MAKE,MAKE - HOLE: TOP - CENTER",
            "2,6.00,MAKE,MAKE - HOLE: LEFT - LEFT",
            "3,9.00,MAKE,MAKE - HOLE: TOP - RIGHT",
            "4,12.00,MISS,MISS - CATCH: CENTER - LEFT",
            "5,15.00,MISS,MISS - TIMEOUT: RIGHT",
            "6,18.00,MAKE,MAKE - HOLE: LOW - CENTER",
            "7,21.00,MISS,MISS - RETURN: LEFT - CENTER",
            "8,24.00,MISS,MISS - QUICK PUTT",
            "",
        ]
    )
    assert report_csv(build_report(known_session(), CONTEXT)) == expected


def test_fastest_21_with_enough_makes_and_rounding() -> None:
    # 25 makes every 2 s, a miss, then 21 quicker makes every 1.005 s: the quick ones win, 20 * 1.005 = 20.1.
    putts = [putt(10.0 + 2 * i, "MAKE - HOLE: TOP - CENTER") for i in range(25)]
    putts.append(putt(60.0, "MISS - TIMEOUT: LEFT"))
    putts += [putt(61.0 + 1.005 * i, "MAKE - HOLE: LOW - LEFT") for i in range(21)]
    report = build_report(session(putts), CONTEXT)
    assert report.fastest_21_makes_seconds == pytest.approx(20.1)
    data = report_json(report)
    assert data["fastest_21_makes_seconds"] == 20.1
    assert data["time_stats"]["fastest_21_makes_seconds"] == 20.1
    assert data["best_streak"] == 25
    assert data["consecutive_stats"]["streaks_over_21"] == 2
    assert "Fastest 21 Makes (seconds),20.10\r\n" in report_csv(report)


def test_single_putt_has_zero_rates_and_fractional_timestamps() -> None:
    s = Session(
        "box-1_x", "box-1", 500.0, 500.0, EPOCH + 0.25, (putt(500.0, "MISS - QUICK PUTT"),), "shutdown"
    )
    data = report_json(build_report(s, CONTEXT))
    assert data["session_duration_seconds"] == 0.0
    assert data["putts_per_minute"] == 0.0
    assert data["makes_per_minute"] == 0.0
    assert data["most_makes_in_60_seconds"] == 0
    assert data["started_at"] == "2023-11-14T22:21:40.250Z"
    assert math.isclose(data["make_percentage"], 0.0)


def test_a_session_without_putts_is_never_reported() -> None:
    with pytest.raises(ValueError, match="no classified putt"):
        build_report(session([]), CONTEXT)


def test_write_report_is_atomic_and_deterministic(tmp_path: Path) -> None:
    pending = tmp_path / "spool" / "pending"
    json_path, csv_path = write_report(build_report(known_session(), CONTEXT), pending)
    assert (json_path.name, csv_path.name) == ("box-1_1700001000000.json", "box-1_1700001000000.csv")
    first = (json_path.read_bytes(), csv_path.read_bytes())
    assert json.loads(first[0]) == report_json(build_report(known_session(), CONTEXT))
    assert first[1].decode() == report_csv(build_report(known_session(), CONTEXT))
    # A crash-recovered session is reported again: the same bytes, and nothing left behind.
    write_report(build_report(known_session(), CONTEXT), pending)
    assert (json_path.read_bytes(), csv_path.read_bytes()) == first
    assert sorted(p.name for p in pending.iterdir()) == [csv_path.name, json_path.name]


def test_csv_lands_before_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash_on_json(path: Path, text: str) -> None:
        if path.suffix == ".json":
            raise OSError("power cut")
        write_text_atomic(path, text)

    monkeypatch.setattr("daemon.delivery.reports.write_text_atomic", crash_on_json)
    with pytest.raises(OSError, match="power cut"):
        write_report(build_report(known_session(), CONTEXT), tmp_path)
    # The uploader only picks up a JSON, so a crash here leaves no half-reported session for it.
    assert [p.name for p in tmp_path.iterdir()] == ["box-1_1700001000000.csv"]


@pytest.mark.parametrize("bad_id", ["../escape", ".hidden", "a/b", ""])
def test_unsafe_session_id_is_refused(tmp_path: Path, bad_id: str) -> None:
    report = build_report(session([putt(3.0, "MISS - QUICK PUTT")], session_id=bad_id), CONTEXT)
    with pytest.raises(ValueError, match="not a safe file name"):
        write_report(report, tmp_path / "pending")
    assert not (tmp_path / "pending").exists()
