"""The read-only shared data (real calibration files, real ball images) that lies beside the project's root.

A clone made elsewhere (a temporary folder) finds it beside the local checkout it was cloned from.
"""

from __future__ import annotations

import configparser
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _origin_checkout(repo: Path) -> Path | None:
    """The local folder REPO was cloned from, if it was cloned from one."""
    config = configparser.ConfigParser()
    config.read(repo / ".git" / "config")
    url = config.get('remote "origin"', "url", fallback="")
    return Path(url).resolve() if url and Path(url).is_dir() else None


def shared_folder(repo: Path = REPO) -> Path:
    """The `shared` folder beside REPO, or beside the checkout REPO was cloned from."""
    origin = _origin_checkout(repo)
    candidates = [repo.parent / "shared", *([origin.parent / "shared"] if origin else [])]
    for folder in candidates:
        if folder.is_dir():
            return folder
    raise FileNotFoundError(f"shared data not found: looked in {', '.join(map(str, candidates))}")
