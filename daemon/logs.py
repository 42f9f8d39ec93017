"""Logging set-up for the CLI: journald under systemd, stderr in a terminal. Called once, by the CLI only."""

from __future__ import annotations

import logging
import os
import sys

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def _under_systemd() -> bool:
    # systemd sets JOURNAL_STREAM when stdout/stderr are connected to the journal.
    return bool(os.environ.get("JOURNAL_STREAM")) and not sys.stderr.isatty()


def configure_logging(level: str) -> None:
    """Send log records to the journal when systemd runs us, else to stderr."""
    handler: logging.Handler
    if _under_systemd():
        from systemd.journal import JournalHandler  # noqa: PLC0415  # only present on Linux hosts

        handler = JournalHandler(SYSLOG_IDENTIFIER="putt-daemon")
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def set_level(level: str) -> None:
    """Apply the level from settings once they are loaded."""
    logging.getLogger().setLevel(level)
