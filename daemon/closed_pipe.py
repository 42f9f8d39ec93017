"""Command-line entry points that end quietly when the reader of their output goes away.

`putt-daemon check-config | grep -q model` or `python -m bench.pipeline | head` close the pipe early; writing
to it then raises BrokenPipeError. The command ends as a process killed by SIGPIPE would, which is what the
shell and `set -o pipefail` expect, instead of a traceback.
"""

from __future__ import annotations

import os
import select
import signal
import sys
from collections.abc import Callable

EXIT_CLOSED_PIPE = 128 + signal.SIGPIPE


def stdout_is_closed() -> bool:
    """True when nobody reads standard output any more (the write end of a pipe with no reader)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))


def silence_stdout() -> None:
    # Python flushes stdout once more at exit and would report that failure too: send what is left nowhere.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def run_main(main: Callable[[], int | None]) -> int:
    """Run MAIN and return its exit code, or EXIT_CLOSED_PIPE when its output's reader has gone.

    A broken pipe that is not standard output (a child process, a socket) is a real error and is raised.
    """
    try:
        try:
            return main() or 0
        finally:
            # Also when MAIN exits early (argparse's --help): what it printed is still in the buffer.
            sys.stdout.flush()
    except BrokenPipeError:
        if not stdout_is_closed():
            raise
        silence_stdout()
        return EXIT_CLOSED_PIPE
