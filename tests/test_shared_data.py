"""Finding the read-only shared data from a checkout anywhere."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tools.shared_data import shared_folder


def test_a_clone_elsewhere_finds_the_data_beside_its_origin(tmp_path: Path) -> None:
    origin = tmp_path / "home" / "project"
    (tmp_path / "home" / "shared").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(origin)], check=True)
    clone = tmp_path / "elsewhere" / "project"
    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True, capture_output=True)
    assert shared_folder(clone) == tmp_path / "home" / "shared"


def test_no_shared_data_anywhere_names_where_it_looked(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path / "project")], check=True)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "shared")):
        shared_folder(tmp_path / "project")
