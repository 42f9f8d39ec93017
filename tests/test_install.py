"""install.sh in system mode, into a staging root: every file, owner and mode; re-runs; --uninstall."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon import configuration
from tests.conftest import REPO

# path -> (kind, mode, owner, group) for everything install.sh puts into a root file system.
LAYOUT = {
    "opt/putt-daemon": ("d", 0o755, "root", "root"),
    "usr/local/bin/putt-daemon": ("l", 0o777, "root", "root"),
    "opt/putt-daemon/README.md": ("f", 0o644, "root", "root"),
    "opt/putt-daemon/docs": ("d", 0o755, "root", "root"),
    "opt/putt-daemon/docs/operations.md": ("f", 0o644, "root", "root"),
    "etc/putt-daemon": ("d", 0o750, "root", "putt-daemon"),
    "etc/putt-daemon/putt-daemon.env": ("f", 0o640, "root", "putt-daemon"),
    "etc/putt-daemon/calibration.json": ("f", 0o640, "root", "putt-daemon"),
    "var/lib/putt-daemon": ("d", 0o750, "putt-daemon", "putt-daemon"),
    "var/lib/putt-daemon/models": ("d", 0o750, "putt-daemon", "putt-daemon"),
    "var/lib/putt-daemon/models/ball.onnx": ("f", 0o644, "putt-daemon", "putt-daemon"),
    "var/lib/putt-daemon/models/ball.json": ("f", 0o644, "putt-daemon", "putt-daemon"),
    "var/lib/putt-daemon/models/ball_verifier.onnx": ("f", 0o644, "putt-daemon", "putt-daemon"),
    "var/lib/putt-daemon/models/ball_verifier.json": ("f", 0o644, "putt-daemon", "putt-daemon"),
    "etc/systemd/system/putt-daemon.service": ("f", 0o644, "root", "root"),
}
# Folders of a base system that install.sh only fills.
BASE = {
    *("etc", "etc/passwd", "etc/group", "etc/passwd-", "etc/group-", "etc/systemd", "etc/systemd/system"),
    *("opt", "var", "var/lib", "usr", "usr/local", "usr/local/bin"),
}
# Where each installed file comes from in the checkout (the env file is derived; see below).
SOURCES = {
    "opt/putt-daemon/README.md": "README.md",
    "opt/putt-daemon/docs/operations.md": "docs/operations.md",
    "etc/putt-daemon/calibration.json": "config/calibration.json",
    "var/lib/putt-daemon/models/ball.onnx": "models/ball.onnx",
    "var/lib/putt-daemon/models/ball.json": "models/ball.json",
    "var/lib/putt-daemon/models/ball_verifier.onnx": "models/ball_verifier.onnx",
    "var/lib/putt-daemon/models/ball_verifier.json": "models/ball_verifier.json",
    "etc/systemd/system/putt-daemon.service": "systemd/putt-daemon.service",
}


def make_root(path: Path) -> Path:
    """A root file system with just the users and groups of a fresh Debian that install.sh relies on."""
    (path / "etc").mkdir(parents=True)
    (path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (path / "etc/group").write_text("root:x:0:\nvideo:x:44:\n")
    return path


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files install.sh reads, copied once: a stable source while the working tree changes."""
    copy = tmp_path_factory.mktemp("checkout")
    for name in (*SOURCES.values(), "install.sh", "pyproject.toml", "config/putt-daemon.env.example"):
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, copy / name)
    shutil.copytree(REPO / "daemon", copy / "daemon", ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def install(checkout: Path, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["bash", str(checkout / "install.sh"), "--root", str(root), *args],
        capture_output=True, text=True, check=False, timeout=540,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def names(root: Path, table: str) -> dict[int, str]:
    """id -> name from ROOT's passwd or group file."""
    rows = (line.split(":") for line in (root / "etc" / table).read_text().splitlines())
    return {int(row[2]): row[0] for row in rows}


def tree(root: Path, skip: tuple[str, ...] = ()) -> dict[str, tuple[str, int, str, str]]:
    """Every path under ROOT (except under SKIP) as (kind, mode, owner, group), names from ROOT's files."""
    users, groups = names(root, "passwd"), names(root, "group")
    found = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if relative in BASE or relative.startswith(skip):
            continue
        info = path.lstat()
        kind = "l" if path.is_symlink() else "d" if path.is_dir() else "f"
        found[relative] = (kind, info.st_mode & 0o7777, users[info.st_uid], groups[info.st_gid])
    return found


def fingerprint(root: Path) -> dict[str, tuple[int, int, int, int, str]]:
    """Mode, owner, group, mtime and content hash of every file: what 'changes nothing' compares."""
    prints = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        digest = (
            hashlib.sha256(path.read_bytes()).hexdigest()
            if path.is_file()
            else str(path.readlink() if path.is_symlink() else "")
        )
        prints[path.relative_to(root).as_posix()] = (
            info.st_mode, info.st_uid, info.st_gid, info.st_mtime_ns, digest,
        )  # fmt: skip
    return prints


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_root(tmp_path / "root")


def test_every_file_owner_and_mode(checkout: Path, root: Path) -> None:
    install(checkout, root, "--no-venv")

    assert tree(root) == {
        path: (kind, mode, owner, group) for path, (kind, mode, owner, group) in LAYOUT.items()
    }
    for installed, source in SOURCES.items():
        assert (root / installed).read_bytes() == (checkout / source).read_bytes(), installed


def test_service_user_is_a_system_user_in_group_video(checkout: Path, root: Path) -> None:
    install(checkout, root, "--no-venv")

    passwd = {row.split(":")[0]: row.split(":") for row in (root / "etc/passwd").read_text().splitlines()}
    user = passwd["putt-daemon"]
    assert user[5:] == ["/var/lib/putt-daemon", "/usr/sbin/nologin"]
    assert int(user[2]) < 1000  # a system user
    groups = {row.split(":")[0]: row.split(":") for row in (root / "etc/group").read_text().splitlines()}
    assert groups["video"][3].split(",") == ["putt-daemon"]
    assert int(user[3]) == int(groups["putt-daemon"][2])  # its own primary group


def test_env_file_names_the_installed_model_and_calibration(checkout: Path, root: Path) -> None:
    install(checkout, root, "--no-venv")

    env_file = root / "etc/putt-daemon/putt-daemon.env"
    template = (checkout / "config/putt-daemon.env.example").read_text().splitlines()
    installed = env_file.read_text().splitlines()
    changed = [(a, b) for a, b in zip(template, installed, strict=True) if a != b]
    assert changed == [
        ("#PUTT_MODEL_PATH=", "PUTT_MODEL_PATH=/var/lib/putt-daemon/models/ball.onnx"),
        ("#PUTT_MODEL_VERIFIER=", "PUTT_MODEL_VERIFIER=/var/lib/putt-daemon/models/ball_verifier.onnx"),
        ("#PUTT_CALIBRATION_FILE=", "PUTT_CALIBRATION_FILE=/etc/putt-daemon/calibration.json"),
    ]
    settings = configuration.load_settings(env_file).settings
    assert settings.model.path == Path("/var/lib/putt-daemon/models/ball.onnx")
    assert settings.model.verifier == Path("/var/lib/putt-daemon/models/ball_verifier.onnx")
    assert settings.calibration.file == Path("/etc/putt-daemon/calibration.json")


def test_plan_is_printed_before_anything_changes(checkout: Path, root: Path) -> None:
    out = install(checkout, root, "--no-venv").stdout

    planned = out.index("    - create /etc/putt-daemon/putt-daemon.env (0640 root:putt-daemon)")
    applying = out.index("==> applying 18 change(s)")
    done = out.index("    create /etc/putt-daemon/putt-daemon.env (0640 root:putt-daemon)")
    assert out.index("==> planning") < planned < applying < done


def test_second_run_changes_nothing_and_says_so(checkout: Path, root: Path) -> None:
    install(checkout, root, "--no-venv")
    before = fingerprint(root)

    out = install(checkout, root, "--no-venv").stdout

    assert "==> nothing to change" in out
    assert "create" not in out
    assert fingerprint(root) == before


def test_operator_files_are_kept_and_shipped_files_repaired(checkout: Path, root: Path) -> None:
    install(checkout, root, "--no-venv")
    env_file = root / "etc/putt-daemon/putt-daemon.env"
    calibration = root / "etc/putt-daemon/calibration.json"
    model = root / "var/lib/putt-daemon/models/ball.onnx"
    env_file.write_text("PUTT_UPLOAD_TOKEN=secret\n")
    calibration.write_text("{}\n")
    model.write_bytes(b"a model the operator installed")
    unit = root / "etc/systemd/system/putt-daemon.service"
    unit.write_text("[Service]\nExecStart=/bin/true\n")
    (root / "etc/putt-daemon").chmod(0o755)

    out = install(checkout, root, "--no-venv").stdout

    assert env_file.read_text() == "PUTT_UPLOAD_TOKEN=secret\n"
    assert calibration.read_text() == "{}\n"
    assert model.read_bytes() == b"a model the operator installed"
    assert unit.read_bytes() == (checkout / "systemd/putt-daemon.service").read_bytes()
    assert tree(root)["etc/putt-daemon"] == LAYOUT["etc/putt-daemon"]
    assert "    - replace /etc/systemd/system/putt-daemon.service" in out
    assert "    - set /etc/putt-daemon/ to 0750 root:putt-daemon" in out
    assert "==> applying 2 change(s)" in out


def test_existing_user_is_added_to_group_video(checkout: Path, root: Path) -> None:
    with (root / "etc/passwd").open("a") as passwd:
        passwd.write("putt-daemon:x:990:990::/var/lib/putt-daemon:/usr/sbin/nologin\n")
    with (root / "etc/group").open("a") as group:
        group.write("putt-daemon:x:990:\n")

    out = install(checkout, root, "--no-venv").stdout

    assert "    - add putt-daemon to group video" in out
    assert "video:x:44:putt-daemon" in (root / "etc/group").read_text().splitlines()


def test_uninstall_keeps_data_settings_and_calibration(checkout: Path, root: Path) -> None:
    install(checkout, root, "--no-venv")
    pending = root / "var/lib/putt-daemon/spool/pending/box-1.json"
    pending.parent.mkdir(parents=True)
    pending.write_text("{}")
    env_file = root / "etc/putt-daemon/putt-daemon.env"
    env_file.write_text("PUTT_DEVICE_NAME=Mat 1\n")
    kept = {
        path: info
        for path, info in fingerprint(root).items()
        if not path.startswith(("opt", "usr", "etc/systemd"))
    }

    out = install(checkout, root, "--uninstall").stdout

    assert not (root / "opt/putt-daemon").exists()
    assert not (root / "etc/systemd/system/putt-daemon.service").exists()
    assert not (root / "usr/local/bin/putt-daemon").is_symlink()
    after = fingerprint(root)
    assert {path: after[path] for path in kept} == kept
    assert "    - remove /opt/putt-daemon/ (the program)" in out
    assert "==> nothing to change" in install(checkout, root, "--uninstall").stdout


@pytest.fixture
def open_root() -> Iterator[Path]:
    """A staging root the service user can reach: check-config runs under that user's id."""
    base = Path(tempfile.mkdtemp(prefix="putt-install-"))
    base.chmod(0o755)
    yield make_root(base / "root")
    shutil.rmtree(base)


@pytest.mark.timeout(600)
def test_venv_holds_the_runtime_only_and_check_config_passes(checkout: Path, open_root: Path) -> None:
    root = open_root
    out = install(checkout, root).stdout

    venv = root / "opt/putt-daemon/venv"
    assert "    - install putt-daemon and its runtime dependencies into /opt/putt-daemon/venv" in out
    assert "==> putt-daemon check-config as putt-daemon" in out
    assert f"    # model: {root}/var/lib/putt-daemon/models/ball.onnx" in out
    assert (
        f"    # verifier: {root}/var/lib/putt-daemon/models/ball_verifier.onnx (drops boxes below 0.02)"
        in out
    )
    assert f"    # calibration: {root}/etc/putt-daemon/calibration.json" in out
    assert "    # all good" in out
    frozen = subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True, text=True, check=True,
    ).stdout.lower()  # fmt: skip
    installed = {line.split("==")[0] for line in frozen.splitlines()}
    assert {"putt-daemon", "onnxruntime", "opencv-python-headless", "paho-mqtt"} <= installed
    assert not installed & {"torch", "torchvision", "ultralytics", "opencv-python", "pytest"}
    # The unit starts what the install put there.
    exec_start = next(
        line.split("=", 1)[1]
        for line in (checkout / "systemd/putt-daemon.service").read_text().splitlines()
        if line.startswith("ExecStart=")
    )
    program = root / exec_start.split()[0].lstrip("/")
    assert os.access(program, os.X_OK)
    # ONNX Runtime writes a device id file under the service user's home (the state folder), as under systemd.
    staged = tree(root, skip=("opt/putt-daemon/venv/", "var/lib/putt-daemon/.cache"))
    assert staged == {**LAYOUT, "opt/putt-daemon/venv": ("d", 0o755, "root", "root")}

    again = install(checkout, root).stdout

    assert "==> nothing to change" in again
    assert "    # all good" in again
