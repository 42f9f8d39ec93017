"""Terminal output of the offline commands: each putt as the service classifies it, each session as it ends.

An `EventSink` like the status outlets, so `demo` and `process` show what the running service would publish.
"""

from __future__ import annotations

from typing import TextIO

from daemon.delivery.reports import SessionReport
from daemon.models import PuttEvent, ServiceState, Session


def clock_text(seconds: float) -> str:
    """`mm:ss.ss` of a time in seconds."""
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes):02d}:{rest:05.2f}"


class ConsoleEvents:
    """Prints a numbered putt table and one line per finished session."""

    def __init__(self, out: TextIO, *, time_origin: float | None = 0.0) -> None:
        self._out = out
        self._origin = time_origin
        self._count = 0
        print(f"{'#':>3}  {'time':>8}  {'outcome':7}  detail", file=out, flush=True)

    def putt(self, event: PuttEvent, session_id: str) -> None:  # noqa: ARG002  # the table has no session column
        self._count += 1
        if self._origin is None:
            self._origin = event.start_time  # times from the first putt when the clip's start is unknown
        when = clock_text(event.time - self._origin)
        print(f"{self._count:>3}  {when:>8}  {event.outcome:7}  {event.detail}", file=self._out, flush=True)

    def session(self, session: Session, report: SessionReport) -> None:
        print(
            f"session {session.session_id}: {report.total_putts} putts, {report.total_makes} makes "
            f"({report.make_percentage:.1f}%), {session.end_time - session.start_time:.1f} s, "
            f"ended by {session.end_reason}",
            file=self._out,
            flush=True,
        )

    def state(self, state: ServiceState) -> None:
        """The console shows putts and sessions only."""

    def close(self) -> None:
        """Nothing buffered."""
