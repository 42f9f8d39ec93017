"""What signals ask of the running service. Each handler only sets a request; the vision loop acts on it
between two frames, so no handler runs stage code in the middle of a frame."""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Protocol

from daemon.models import EndReason

logger = logging.getLogger(__name__)


class Controllable(Protocol):
    """The requests a signal can make."""

    def request_stop(self, reason: EndReason = "shutdown") -> None: ...
    def request_reload(self) -> None: ...
    def request_snapshot(self) -> None: ...


def install_signal_handlers(service: Controllable) -> None:
    """SIGTERM and SIGINT stop the service cleanly; SIGHUP reloads its settings and calibration; SIGUSR1
    writes the newest frame to the state folder."""

    def stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %s: stopping", signal.Signals(signum).name)
        service.request_stop("shutdown")

    def reload(_signum: int, _frame: FrameType | None) -> None:
        service.request_reload()

    def snapshot(_signum: int, _frame: FrameType | None) -> None:
        service.request_snapshot()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)
    signal.signal(signal.SIGUSR1, snapshot)
