"""Reports stage: a finished `Session` in, its Proof of Putt report out, as JSON and CSV in the spool.

Contract: `build_report` computes every statistic with the exact definitions of the Proof of Putt
report (shared README, "Session report statistics"; the pure functions live in `daemon.delivery.stats`) in
O(n); a session with no classified putt is never reported (ValueError). `report_json` keeps the original
nested sections and adds the flat fields the upload API reads, always as JSON numbers. `report_csv` keeps
the original human-readable layout. `write_report` writes `<session_id>.csv` then `<session_id>.json`
atomically and durably; the JSON is the uploader's unit of work, so it appears last. The output depends on
the session and context only (no wall clock), so writing the same session twice, as crash recovery may,
gives identical bytes.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.atomicfile import write_text_atomic
from daemon.delivery.stats import (
    MISS_CATEGORIES,
    MissCategory,
    fastest_span,
    longest_run,
    miss_category,
    most_in_window,
    per_minute,
    streak_counts,
)
from daemon.models import QUADRANTS, EndReason, PuttEvent, Quadrant, Session

logger = logging.getLogger(__name__)

# A session id becomes a file name in the spool: no separators, no leading dot (hidden / temp files).
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True, slots=True)
class ReportContext:
    """Who putted and which software, model and calibration counted the putts."""

    player_name: str
    player_email: str
    software_version: str
    model_version: str
    calibration_version: str
    # Start times (source clock) of putts counted while the calibration did not match the scene.
    under_drift: frozenset[float] = frozenset()


@dataclass(frozen=True, slots=True)
class PuttRow:
    """One counted putt as the report lists it; `time` is seconds since the session start."""

    index: int
    putt: PuttEvent
    time: float

    @property
    def outcome(self) -> str:
        return self.putt.outcome

    @property
    def detail(self) -> str:
        return self.putt.detail


@dataclass(frozen=True, slots=True)
class SessionReport:
    """A session's statistics, unrounded; rounding happens only when the report is rendered."""

    session_id: str
    device_id: str
    started_at: float  # UTC epoch seconds
    ended_at: float
    end_reason: EndReason
    context: ReportContext
    putts: tuple[PuttRow, ...]
    total_makes: int
    make_percentage: float
    miss_percentage: float
    makes_by_category: Mapping[Quadrant, int]
    misses_by_category: Mapping[MissCategory, int]
    max_consecutive: int
    streaks: Mapping[int, int]  # threshold -> runs of at least that many makes
    duration_seconds: float
    putts_per_minute: float
    makes_per_minute: float
    most_makes_in_60_seconds: int
    fastest_21_makes_seconds: float | None

    @property
    def total_putts(self) -> int:
        return len(self.putts)

    @property
    def total_misses(self) -> int:
        return self.total_putts - self.total_makes


def build_report(session: Session, context: ReportContext) -> SessionReport:
    """Compute the report of a finished session; ValueError if it has no classified putt."""
    if not session.putts:
        raise ValueError(f"session {session.session_id} has no classified putt; it is not reported")
    rows = tuple(
        PuttRow(index, putt, putt.time - session.start_time)
        for index, putt in enumerate(session.putts, start=1)
    )
    makes = [row.putt.is_make for row in rows]
    # Sorting is linear on the already ordered times the classifier produces, and guards a reordered journal.
    make_times = sorted(row.time for row, made in zip(rows, makes, strict=True) if made)
    makes_by_category = dict.fromkeys(QUADRANTS, 0)
    misses_by_category = dict.fromkeys(MISS_CATEGORIES, 0)
    for row in rows:
        quadrant, category = row.putt.hole_quadrant, miss_category(row.putt.kind)
        if quadrant is not None:
            makes_by_category[quadrant] += 1
        if category is not None:
            misses_by_category[category] += 1
    total_makes = len(make_times)
    duration = max(row.time for row in rows)
    return SessionReport(
        session_id=session.session_id,
        device_id=session.device_id,
        started_at=session.started_at,
        ended_at=session.ended_at,
        end_reason=session.end_reason,
        context=context,
        putts=rows,
        total_makes=total_makes,
        make_percentage=total_makes / len(rows) * 100,
        miss_percentage=(len(rows) - total_makes) / len(rows) * 100,
        makes_by_category=makes_by_category,
        misses_by_category=misses_by_category,
        max_consecutive=longest_run(makes),
        streaks=streak_counts(makes),
        duration_seconds=duration,
        putts_per_minute=per_minute(len(rows), duration),
        makes_per_minute=per_minute(total_makes, duration),
        most_makes_in_60_seconds=most_in_window(make_times),
        fastest_21_makes_seconds=fastest_span(make_times),
    )


def iso_utc(epoch_seconds: float) -> str:
    """UTC ISO-8601 with milliseconds and a Z, e.g. 2023-11-14T22:13:20.000Z."""
    moment = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fastest(report: SessionReport) -> float | None:
    fastest = report.fastest_21_makes_seconds
    return None if fastest is None else round(fastest, 2)


def report_json(report: SessionReport) -> dict[str, Any]:
    """The report as a JSON-serialisable object: flat API fields first, then the original sections."""
    context = report.context
    duration = round(report.duration_seconds, 2)
    drifted = [row.index for row in report.putts if row.putt.start_time in context.under_drift]
    time_stats = {
        "putts_per_minute": round(report.putts_per_minute, 2),
        "makes_per_minute": round(report.makes_per_minute, 2),
        "most_makes_in_60_seconds": report.most_makes_in_60_seconds,
        "fastest_21_makes_seconds": _fastest(report),
    }
    return {
        "session_id": report.session_id,
        "device_id": report.device_id,
        "started_at": iso_utc(report.started_at),
        "ended_at": iso_utc(report.ended_at),
        "end_reason": report.end_reason,
        "software_version": context.software_version,
        "model_version": context.model_version,
        "calibration_version": context.calibration_version,
        # Only when some were: these putts were counted with regions the scene no longer matched.
        **({"putts_under_calibration_drift": drifted} if drifted else {}),
        "total_putts": report.total_putts,
        "total_makes": report.total_makes,
        "total_misses": report.total_misses,
        "make_percentage": round(report.make_percentage, 2),
        "best_streak": report.max_consecutive,
        "session_duration_seconds": duration,
        **time_stats,
        "session_info": {
            "player_name": context.player_name,
            "player_email": context.player_email,
            # The session's end, not the wall clock, so a rewrite of the same session is byte-identical.
            "report_generated_at": iso_utc(report.ended_at),
            "session_duration_seconds": duration,
        },
        "analytic_stats": {
            "total_putts": report.total_putts,
            "total_makes": report.total_makes,
            "make_percentage": round(report.make_percentage, 2),
            "total_misses": report.total_misses,
            "miss_percentage": round(report.miss_percentage, 2),
            "makes_by_category": dict(report.makes_by_category),
            "misses_by_category": dict(report.misses_by_category),
        },
        "consecutive_stats": {
            "max_consecutive": report.max_consecutive,
            **{f"streaks_over_{n}": count for n, count in report.streaks.items()},
        },
        "time_stats": time_stats,
        "putt_list": [
            {
                "Putt Index": row.index,
                "Putt Classification": row.outcome,
                "Putt Detailed Classification": row.detail,
                "Putt Time": round(row.time, 3),  # milliseconds keep every frame apart
            }
            for row in report.putts
        ],
    }


def report_csv(report: SessionReport) -> str:
    """The report in the original's human-readable CSV layout (csv module dialect, CRLF line ends)."""
    fastest = report.fastest_21_makes_seconds
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerows(
        [
            ["Player Name", report.context.player_name],
            ["Report Generated At", iso_utc(report.ended_at)],
            [],
            ["Analytic Stats", ""],
            ["Total Putts", report.total_putts],
            ["Total Makes", report.total_makes],
            ["Make Percentage", f"{report.make_percentage:.2f}%"],
            ["Total Misses", report.total_misses],
            ["Miss Percentage", f"{report.miss_percentage:.2f}%"],
            [],
            ["Consecutive Stats", ""],
            ["Max Consecutive Makes", report.max_consecutive],
            *[[f"Streaks over {n}", count] for n, count in report.streaks.items()],
            [],
            ["Time Stats", ""],
            ["Session Duration (seconds)", f"{report.duration_seconds:.2f}"],
            ["Putts Per Minute", f"{report.putts_per_minute:.2f}"],
            ["Makes Per Minute", f"{report.makes_per_minute:.2f}"],
            ["Most Makes in 60 seconds", report.most_makes_in_60_seconds],
            ["Fastest 21 Makes (seconds)", "N/A" if fastest is None else f"{fastest:.2f}"],
            [],
            ["Putt History", ""],
            ["Putt Index", "Time (s)", "Classification", "Detailed Classification"],
            *[[row.index, f"{row.time:.2f}", row.outcome, row.detail] for row in report.putts],
        ]
    )
    return buffer.getvalue()


def write_report(report: SessionReport, folder: Path) -> tuple[Path, Path]:
    """Write `<session_id>.csv`, then `<session_id>.json`, atomically into FOLDER; returns (json, csv)."""
    if not _SAFE_ID.fullmatch(report.session_id):
        raise ValueError(f"session id {report.session_id!r} is not a safe file name")
    json_path = folder / f"{report.session_id}.json"
    csv_path = folder / f"{report.session_id}.csv"
    # allow_nan=False: a NaN would make the file invalid JSON for the API; better to fail here, loudly.
    text = json.dumps(report_json(report), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    # The uploader takes a present JSON as a complete report, so it is renamed into place last.
    write_text_atomic(csv_path, report_csv(report))
    write_text_atomic(json_path, text)
    logger.info("report for session %s written to %s", report.session_id, json_path)
    return json_path, csv_path


class ReportFolder:
    """The first session sink: each finished session's report pair, written atomically into a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.written: list[Path] = []

    def accept(self, session: Session, report: SessionReport) -> None:
        """Write REPORT's JSON and CSV; raises OSError when the folder cannot take them."""
        json_path, _ = write_report(report, self.folder)
        self.written.append(json_path)
        logger.debug("session %s reported to %s", session.session_id, json_path)

    def close(self) -> None:
        """Nothing is buffered: every report is on disk when `accept` returns."""
