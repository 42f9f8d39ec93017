"""A separate process for tests/delivery/test_spool.py (run as a script, never imported).

- `open ROOT [shared]`: open the spool; print "opened" or the SpoolError, then exit.
- `entry-lock ROOT ID`: take ID's entry lock, print "held True" or "held False", wait for stdin to close.
- `produce ROOT JOURNAL N`: what the service does, forever: recover old journals, then journal a session's
  putts, accept it, print its id, discard its journal. Sessions are numbered from N.
"""

from __future__ import annotations

import sys
from pathlib import Path

from daemon.delivery.reports import ReportContext, build_report
from daemon.delivery.sessions import SessionConfig, SessionKeeper
from daemon.delivery.spool import Spool, SpoolConfig
from daemon.errors import SpoolError
from daemon.models import PuttEvent, Session

CONTEXT = ReportContext("Jane Doe", "jane@example.com", "0.1.0", "model", "calibration")
EPOCH = 1_700_000_000.0


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def hand_over(spool: Spool, keeper: SessionKeeper, session: Session) -> None:
    """The service's `_finished`: the journal goes only after the spool has the session."""
    spool.accept(session, build_report(session, CONTEXT))
    say(session.session_id)
    keeper.discard_journal(session)


def produce(spool: Spool, journal: Path, first: int) -> None:
    for line in spool.open():
        say(f"open: {line}")
    keeper = SessionKeeper(SessionConfig("box-1", 120.0, 7200.0, journal))
    for session in keeper.recover(now_epoch=2e9):
        hand_over(spool, keeper, session)
    say("ready")
    number = first
    while True:
        t = 10.0 * number
        keeper.add_putt(PuttEvent("HOLE", t, t + 1.0, "LEFT", None, "LOW"), epoch_offset=EPOCH)
        keeper.add_putt(PuttEvent("CATCH", t + 2.0, t + 3.0, "CENTER", "RIGHT"), epoch_offset=EPOCH)
        finished = keeper.end("command")
        assert finished is not None
        hand_over(spool, keeper, finished)
        number += 1


def main(argv: list[str]) -> int:
    mode, root = argv[0], Path(argv[1])
    spool = Spool(SpoolConfig(root))
    if mode == "open":
        try:
            spool.open(exclusive=argv[2:] != ["shared"])
        except SpoolError as err:
            say(str(err))
            return 1
        say("opened")
    elif mode == "entry-lock":
        with spool.entry_lock(argv[2]) as held:
            say(f"held {held}")
            sys.stdin.read()
    else:
        produce(spool, Path(argv[2]), int(argv[3]))
    spool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
