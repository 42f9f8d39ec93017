"""Shared fixtures: every test starts with no PUTT_* variables and no default env file in play."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean_putt_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("PUTT_"):
            monkeypatch.delenv(name)


@pytest.fixture
def cli_env() -> dict[str, str]:
    """An environment for running the CLI in a subprocess, without PUTT_* variables."""
    return {k: v for k, v in os.environ.items() if not k.upper().startswith("PUTT_")}
