"""The package's shape: imports run downward only (commands -> service -> stages -> records)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "daemon"
# A module in a layer may import its own layer and those after it, never those before it.
LAYERS = ("cli", "commands", "service", "outlets", "delivery", "sim", "vision")
BOTTOM = {
    "models", "settings", "errors", "paths", "redact", "atomicfile", "configuration", "logs", "progress",
    "sinks", "memory",
}  # fmt: skip


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("daemon"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("daemon")}
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_imports_run_downward(path: Path) -> None:
    module = ".".join(path.relative_to(REPO).with_suffix("").parts)
    own = layer_of(module)
    for target in imports_of(path):
        theirs = layer_of(target)
        if theirs in BOTTOM or theirs in ("", "__init__", own) or own not in LAYERS or theirs not in LAYERS:
            continue
        assert LAYERS.index(theirs) > LAYERS.index(own), f"{module} imports {target} (upward)"


def test_bottom_modules_import_no_stage() -> None:
    for name in BOTTOM - {"sinks", "configuration"}:
        for target in imports_of(PACKAGE / f"{name}.py"):
            assert layer_of(target) in BOTTOM, f"daemon.{name} imports {target}"


def test_the_vision_stages_never_load_network_libraries() -> None:
    stages = sorted(f"daemon.vision.{p.stem}" for p in (PACKAGE / "vision").glob("*.py"))
    code = (
        f"import sys, {', '.join(stages)}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('requests', 'paho', 'urllib3')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


SCRIPTS = sorted(
    path
    for path in [*(REPO / "bench").glob("*.py"), *(REPO / "tools").glob("*.py")]
    if 'if __name__ == "__main__":' in path.read_text()
)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_the_checkouts_scripts_run_as_files_from_any_folder(script: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(script), "--help"],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: "), done.stdout
