"""Where the daemon's files are, independent of the working directory.

The shipped model and default calibration are found beside the installed package (a source checkout or an
editable install) or under `<prefix>/share/putt-daemon` (a wheel install). The state directory holds
journals, reports and the state file: `$STATE_DIRECTORY` under systemd, `/var/lib/putt-daemon` for root,
`$XDG_STATE_HOME/putt-daemon` (default `~/.local/state/putt-daemon`) for anyone else. Functions take the
environment as an argument; only the settings pass `os.environ` in.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SYSTEM_STATE_DIR = Path("/var/lib/putt-daemon")
SHARE_DIR = Path(sys.prefix) / "share" / "putt-daemon"


def shipped_file(relative: str) -> Path:
    """A file the project ships (`models/ball.onnx`, `config/calibration.json`), wherever it was installed."""
    for root in (PACKAGE_DIR.parent, SHARE_DIR):
        candidate = root / relative
        if candidate.is_file():
            return candidate
    # Neither exists: name the checkout's path so the error message points at a real place to put it.
    return PACKAGE_DIR.parent / relative


def default_state_dir(environ: Mapping[str, str], euid: int | None = None) -> Path:
    """The state directory for this process (see the module docstring)."""
    from_systemd = environ.get("STATE_DIRECTORY", "").split(":")[0]
    if from_systemd:
        return Path(from_systemd)
    if (os.geteuid() if euid is None else euid) == 0:
        return SYSTEM_STATE_DIR
    xdg = environ.get("XDG_STATE_HOME", "")
    base = Path(xdg) if xdg else Path(environ.get("HOME", str(Path.home()))) / ".local" / "state"
    return base / "putt-daemon"
