"""The parts of `ServiceState` that are worked out from the stages' own records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from daemon.models import PuttEvent, ServiceStatus, SessionProgress
from daemon.service.delivery import Delivery


def session_progress(session_id: str | None, putts: Sequence[PuttEvent]) -> SessionProgress | None:
    """The open session's putts, makes and current run of makes; None when no session is open."""
    if session_id is None:
        return None
    streak = 0
    for putt in reversed(putts):
        if not putt.is_make:
            break
        streak += 1
    return SessionProgress(session_id, len(putts), sum(p.is_make for p in putts), streak)


def overall_status(
    current: ServiceStatus, problems: Mapping[str, str], progress: SessionProgress | None
) -> ServiceStatus:
    """Starting and stopping win; then any problem makes the service degraded; else in a session or idle."""
    if current in ("starting", "stopping"):
        return current
    if problems:
        return "degraded"
    return "in_session" if progress is not None else "idle"


def delivery_fields(delivery: Delivery | None) -> dict[str, Any]:
    """The spool and uploader fields of the state; none when this command does not deliver."""
    if delivery is None:
        return {}
    state = delivery.state()
    return {
        "spool_pending": state.pending, "spool_dead": state.dead, "spool_bytes": state.bytes,
        "upload": state.upload, "last_upload_at": state.last_upload_at,
        "last_upload_result": state.last_upload_result,
    }  # fmt: skip
