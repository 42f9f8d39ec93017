"""The process bench.spool_chaos and tests/delivery/test_kill_uploads.py kill: the delivery side of `run`.

python -m bench.chaos_driver --spool DIR --journal DIR --url URL --first N --sessions TOTAL [options]

What `run` does with sessions, in one process and in the same order: open the spool (exclusive, so it tidies
what a kill left), start the uploader on it, recover the journals a kill left and hand those sessions to the
spool; then produce sessions FIRST..TOTAL-1: journal each putt (fsynced), end the session, `Spool.accept`,
`discard_journal`, wake the uploader. Session N starts at source time 10*N, so its id is the same in every
run and a session produced again after a kill is the one already queued. Its putts come from a generator
seeded by (seed, N). Prints `produced N ID` once a session is handed over (journal gone), `ready` after
recovery, `done` when all are produced; then uploads until SIGTERM (which stops the uploader and releases
the spool) or SIGKILL.
"""

from __future__ import annotations

import argparse
import logging
import random
import signal
import sys
import threading
import time
from pathlib import Path

from pydantic import SecretStr

from daemon import __version__
from daemon.closed_pipe import run_main
from daemon.delivery.reports import ReportContext, build_report
from daemon.delivery.sessions import SessionConfig, SessionKeeper
from daemon.delivery.spool import Spool, SpoolConfig
from daemon.delivery.uploader import UploadConfig, Uploader
from daemon.errors import SpoolError
from daemon.models import LANES, QUADRANTS, PuttEvent, Session

logger = logging.getLogger("bench.chaos_driver")

DEVICE = "chaosbox"
EPOCH = 1_700_000_000.0
SPACING = 10.0  # source seconds between session starts
CONTEXT = ReportContext("Chaos Bench", "chaos@example.com", __version__, "chaos-model", "chaos-calibration")
TOKEN = SecretStr("chaos-bench-token")


def session_number(session: Session) -> int:
    """N of a session this driver produced (its first putt starts at 10*N)."""
    return round(session.start_time / SPACING)


def session_id(number: int) -> str:
    """The id SessionKeeper gives session NUMBER."""
    return f"{DEVICE}_{round((SPACING * number + EPOCH) * 1000)}"


def putts(seed: int, number: int) -> list[PuttEvent]:
    """Session NUMBER's putts: 1 to 6, all within its 10 s slot, the same in every run."""
    rng = random.Random(f"{seed}:{number}")
    events = []
    for index in range(rng.randint(1, 6)):
        start = SPACING * number + index * 1.5
        lane = rng.choice(LANES[:3])
        match rng.choice(("HOLE", "HOLE", "CATCH", "RETURN", "TIMEOUT")):
            case "HOLE":
                events.append(PuttEvent("HOLE", start, start + 1.0, lane, None, rng.choice(QUADRANTS)))
            case "CATCH":
                events.append(PuttEvent("CATCH", start, start + 1.0, lane, rng.choice(LANES[:3])))
            case "RETURN":
                events.append(PuttEvent("RETURN", start, start + 1.0, lane, rng.choice(LANES[:3])))
            case _:
                events.append(PuttEvent("TIMEOUT", start, start + 1.0, lane))
    return events


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class Driver:
    """One run: the spool, the journals and the uploader, wired as the service wires them."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._args = args
        self._stop = threading.Event()
        self._spool = Spool(SpoolConfig(args.spool))
        self._keeper = SessionKeeper(SessionConfig(DEVICE, 120.0, 7200.0, args.journal))
        config = UploadConfig(
            url=args.url,
            token=TOKEN,
            connect_timeout=args.connect_timeout,
            read_timeout=args.read_timeout,
            retry_max_delay=args.retry_max_delay,
            max_server_errors=args.max_server_errors,
        )
        self._uploader = Uploader(config, self._spool)

    def stop(self) -> None:
        """Leave the production loop or the upload wait."""
        self._stop.set()

    def run(self) -> None:
        for line in self._spool.open(exclusive=True):
            logger.warning("spool: %s", line)
        self._uploader.start()
        number = self._args.first
        try:
            for session in self._keeper.recover(time.time()):
                self._hand_over(session)
                number = max(number, session_number(session) + 1)
            say("ready")
            while number < self._args.sessions and not self._stop.is_set():
                self._produce(number)
                number += 1
            if not self._stop.is_set():
                say("done")
            self._stop.wait()
        finally:
            self._uploader.stop()
            self._spool.close()

    def _produce(self, number: int) -> None:
        rng = random.Random(f"pace:{self._args.seed}:{number}")
        for event in putts(self._args.seed, number):
            self._stop.wait(rng.uniform(0.0, 2.0 * self._args.pace))
            self._keeper.add_putt(event, epoch_offset=EPOCH)
        finished = self._keeper.end("command")
        if finished is not None:
            self._hand_over(finished)

    def _hand_over(self, session: Session) -> None:
        """The service's `_finished`: the journal goes only once the spool has the session."""
        while True:
            try:
                self._spool.accept(session, build_report(session, CONTEXT))
                break
            except SpoolError as err:  # the journal keeps it; try again, as the service does later
                logger.error("session %s kept in its journal: %s", session.session_id, err)  # noqa: TRY400  # one line
                if self._stop.wait(1.0):
                    return
        self._keeper.discard_journal(session)
        self._uploader.wake()
        say(f"produced {session_number(session)} {session.session_id}")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spool", type=Path, required=True)
    parser.add_argument("--journal", type=Path, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--first", type=int, default=0, help="the first session number to produce")
    parser.add_argument("--sessions", type=int, required=True, help="produce sessions up to this number")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pace", type=float, default=0.02, help="mean seconds between putts")
    parser.add_argument("--connect-timeout", type=float, default=0.5)
    parser.add_argument("--read-timeout", type=float, default=1.0)
    parser.add_argument("--retry-max-delay", type=float, default=5.0)
    parser.add_argument("--max-server-errors", type=int, default=8)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    driver = Driver(args)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: driver.stop())
    driver.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
