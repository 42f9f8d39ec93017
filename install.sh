#!/usr/bin/env bash
# Install putt-daemon.
#
#   ./install.sh --dev   as root on Debian 12: apt packages for building and testing, .venv in this checkout,
#                        the package editable with the dev and export extras. Safe to run again.
#   ./install.sh         as root on the box (a Raspberry Pi): system install under /opt/putt-daemon, a
#                        putt-daemon user, /etc/putt-daemon/putt-daemon.env and the systemd unit.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode=system
for arg in "$@"; do
    case "$arg" in
        --dev) mode=dev ;;
        -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done

step() { echo "==> $*"; }
fail() { echo "install.sh: FAILED at step: $current_step" >&2; }
current_step=start
trap fail ERR

run_step() {
    current_step="$1"
    shift
    step "$current_step"
    "$@"
}

apt_packages=(libsystemd-dev pkg-config python3-venv mosquitto mosquitto-clients ffmpeg)

install_apt() {
    local missing=()
    for pkg in "${apt_packages[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        echo "    apt packages already installed"
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "install.sh: need root to install: ${missing[*]}" >&2
        return 1
    fi
    echo "    installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The test suite starts its own broker; the packaged one is not needed running.
    if command -v systemctl >/dev/null && systemctl is-active --quiet mosquitto 2>/dev/null; then
        systemctl disable --now mosquitto >/dev/null 2>&1 || true
    fi
}

python_bin() {
    for candidate in python3.11 python3.12 python3.13 python3; do
        if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            command -v "$candidate"
            return 0
        fi
    done
    echo "install.sh: Python 3.11 or newer is required" >&2
    return 1
}

make_venv() {
    local venv="$1"
    if [ -x "$venv/bin/python" ]; then
        echo "    $venv exists"
    else
        "$(python_bin)" -m venv "$venv"
    fi
}

# pip skips the resolver when the same requirements are already met; the stamp makes a re-run instant.
install_package() {
    local venv="$1" spec="$2"
    local stamp="$venv/.putt-daemon-installed"
    local want
    want="$(cat "$here/pyproject.toml" <(echo "$spec") | sha256sum | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$venv/bin/python" -c 'import daemon' 2>/dev/null; then
        echo "    package already installed ($spec)"
        return 0
    fi
    local log
    log="$(mktemp)"
    # The local wheel mirrors warn about every missing folder; show pip's output only when it fails.
    if ! "$venv/bin/pip" install --disable-pip-version-check -e "$spec" >"$log" 2>&1; then
        grep -v '^WARNING: Location' "$log" >&2
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
    "$venv/bin/python" -c 'import daemon, cv2, onnxruntime, paho.mqtt, systemd.journal'
    echo "$want" >"$stamp"
}

if [ "$mode" = dev ]; then
    run_step "apt packages" install_apt
    run_step "virtual environment (.venv)" make_venv "$here/.venv"
    run_step "putt-daemon with dev and export extras" install_package "$here/.venv" "$here[dev,export]"
    step "done: $here/.venv/bin/putt-daemon"
    exit 0
fi

# System mode: the service layout on the box.
if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: system install needs root (or use --dev)" >&2
    exit 1
fi
apt_packages=(libsystemd-dev pkg-config python3-venv)
run_step "apt packages" install_apt
run_step "virtual environment (/opt/putt-daemon/venv)" make_venv /opt/putt-daemon/venv
run_step "putt-daemon" install_package /opt/putt-daemon/venv "$here"
echo "install.sh: system mode installs the program only; the service unit is installed by a later version" >&2
