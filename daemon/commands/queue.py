"""`putt-daemon queue`: the sessions waiting for the web API, those set aside, and those sent.

Works beside a running service: it never takes the spool's lock, and every change or upload of one entry
holds that entry's own lock, which the service's uploader respects too.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from daemon.configuration import LoadedSettings
from daemon.delivery.spool import FOLDERS, Spool, SpoolEntry
from daemon.delivery.uploader import Uploader
from daemon.errors import ConfigError, InputMissingError, SpoolError
from daemon.service import stage_configs


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def _list(spool: Spool) -> int:
    now = time.time()
    print(f"{'folder':8}  {'session':32}  {'age':>7}  {'size':>8}  {'tries':>5}  last error / server id")
    for folder in FOLDERS:
        entries = spool.pending() if folder == "pending" else spool.entries(folder)
        for entry in entries:
            print(
                f"{folder:8}  {entry.session_id:32}  {_age(now - entry.queued_at):>7}  {entry.size:>8}  "
                f"{entry.attempts:>5}  {entry.last_error[:80]}"
            )
    usage = spool.usage()
    print(f"{usage.pending} pending, {usage.dead} dead, {usage.sent} sent, {usage.bytes / 1e6:.1f} MB")
    return 0


def _show(spool: Spool, ids: list[str]) -> int:
    for sid in ids:
        entry = spool.get(sid)
        if entry is None:
            raise InputMissingError(f"no session {sid} in the queue")
        print(_describe(entry))
        print(entry.json_path.read_text(encoding="utf-8"), end="")
    return 0


def _describe(entry: SpoolEntry) -> str:
    error = f", last error: {entry.last_error}" if entry.last_error else ""
    return f"# {entry.folder}/{entry.session_id}: {entry.size} bytes, {entry.attempts} attempts{error}"


def _flush(spool: Spool, loaded: LoadedSettings) -> int:
    upload = stage_configs(loaded.settings).upload
    if upload is None:
        raise ConfigError(["PUTT_UPLOAD_URL: not set, so there is nowhere to upload to"])
    summary = Uploader(upload, spool).drain()
    print(
        f"{summary.delivered} delivered, {summary.dead} set aside, {summary.skipped} skipped (being uploaded "
        f"by the service), {summary.remaining} still pending"
    )
    if summary.auth_failure:
        print(f"putt-daemon queue: upload refused: {summary.auth_failure}", file=sys.stderr)
    return 0 if not spool.pending() else 1


def queue_command(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    """Entry point of `putt-daemon queue`."""
    spool = Spool(stage_configs(loaded.settings).spool)
    spool.open(exclusive=False)
    try:
        return _dispatch(spool, args, loaded)
    finally:
        spool.close()


def _add(spool: Spool, targets: list[str]) -> int:
    for name in targets:
        path = Path(name)
        if not path.is_file():
            raise InputMissingError(f"report not found: {path}")
        print(f"queued {spool.add_report(path)}")
    return 0


def _retry(spool: Spool, targets: list[str]) -> int:
    for sid in targets:
        with spool.entry_lock(sid) as mine:
            if not mine:
                raise SpoolError(f"session {sid} is being uploaded right now")
            spool.retry(sid)
        print(f"{sid}: back in pending")
    return 0


def _dispatch(spool: Spool, args: argparse.Namespace, loaded: LoadedSettings) -> int:
    action: str = args.action
    targets: list[str] = args.targets
    if action in ("show", "add", "retry") and not targets:
        what = "report" if action == "add" else "session id"
        print(f"putt-daemon queue {action}: name at least one {what}", file=sys.stderr)
        return 2
    handlers: dict[str, Callable[[], int]] = {
        "list": lambda: _list(spool),
        "show": lambda: _show(spool, targets),
        "add": lambda: _add(spool, targets),
        "retry": lambda: _retry(spool, targets),
        "retry-dead": lambda: _say(f"{spool.retry_dead()} sessions back in pending"),
        "purge-dead": lambda: _say(f"{spool.purge_dead()} dead sessions deleted"),
        "flush": lambda: _flush(spool, loaded),
    }
    return handlers[action]()


def _say(text: str) -> int:
    print(text)
    return 0
