"""The seam between the vision loop and everything that carries its results away.

The service hands each finished session to every `SessionSink` and each putt and state change to every
`EventSink` it was given. Sinks must return quickly: anything slow (disk flushes, the network) happens on the
sink's own thread. A sink never raises into the loop except `SessionSink.accept`, whose failure keeps the
session's journal so that nothing is lost.
"""

from __future__ import annotations

from typing import Protocol

from daemon.delivery.reports import SessionReport
from daemon.models import PuttEvent, ServiceState, Session


class SessionSink(Protocol):
    """Takes finished sessions: today the report folder; the spool and uploader plug in here."""

    def accept(self, session: Session, report: SessionReport) -> None:
        """Keep SESSION durably; raise (SpoolError) when it cannot, so its journal is kept."""
        ...

    def close(self) -> None:
        """Finish pending work; called once, in reverse order of start."""
        ...


class EventSink(Protocol):
    """Takes live events: systemd status, the state file, the console; MQTT plugs in here."""

    def putt(self, event: PuttEvent, session_id: str) -> None:
        """A putt was classified and journalled in session SESSION_ID."""
        ...

    def session(self, session: Session, report: SessionReport) -> None:
        """A session ended and was handed to the session sinks."""
        ...

    def state(self, state: ServiceState) -> None:
        """The service's state, on change and every few seconds."""
        ...

    def close(self) -> None:
        """Stop; called once, in reverse order of start."""
        ...
