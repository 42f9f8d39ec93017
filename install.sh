#!/usr/bin/env bash
# Install putt-daemon.
#
#   sudo ./install.sh              the box (Raspberry Pi OS or Debian 12, arm64 or amd64): apt packages, the
#                                  putt-daemon user (in group video), /opt/putt-daemon, /etc/putt-daemon,
#                                  the model in /var/lib/putt-daemon/models, the unit, enabled and started.
#   sudo ./install.sh --uninstall  removes the program and the unit; keeps settings, calibration and data.
#   sudo ./install.sh --root DIR   the same into the root file system DIR (an image, a test): no apt, no
#                                  systemctl. DIR/etc/passwd and DIR/etc/group must exist.
#        --no-venv                 leaves /opt/putt-daemon/venv out (and with it the final check-config).
#   ./install.sh --dev             this checkout, for development: apt packages, .venv with a pinned torch,
#                                  the package editable with the dev and export extras, one OpenCV.
# Every run lists what it will change before changing it; a run with nothing to change says so.
set -euo pipefail
umask 022

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode=system
root=""
with_venv=1
while [ $# -gt 0 ]; do
    case "$1" in
        --dev) mode=dev ;;
        --uninstall) mode=uninstall ;;
        --root)
            [ $# -ge 2 ] || { echo "install.sh: --root needs a folder" >&2; exit 2; }
            root="$(cd "$2" && pwd)"
            shift
            ;;
        --no-venv) with_venv=0 ;;
        -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { echo "==> $*"; }
die() { echo "install.sh: $*" >&2; exit 1; }

python_bin() {
    for candidate in python3.11 python3.12 python3.13 python3; do
        if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            command -v "$candidate"
            return 0
        fi
    done
    die "Python 3.11 or newer is required"
}

# pip's output only when it fails: the local wheel mirrors warn about every folder they lack.
quiet_pip() {
    local log
    log="$(mktemp)"
    if ! "$@" >"$log" 2>&1; then
        grep -v '^WARNING: Location' "$log" >&2
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
}

# --- apt: the same in every mode; the plan shows apt's own list, upgrades of installed packages included.

missing_apt() {
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
    done
}

show_apt_plan() {
    echo "    apt-get install ${*}"
    [ "$(id -u)" -eq 0 ] || return 0
    # Fresh package lists, then apt's own simulation: what it would also pull in or upgrade (e.g. libsystemd0
    # with libsystemd-dev).
    apt-get update -qq
    apt-get install -s --no-install-recommends "$@" 2>/dev/null | sed -n 's/^Inst /      installs or upgrades: /p' || true
}

install_apt() {
    [ "$(id -u)" -eq 0 ] || die "need root to install apt packages: $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# =====================================================================================================
# --dev: this checkout's .venv
# =====================================================================================================

dev_apt=(libsystemd-dev pkg-config python3-venv mosquitto mosquitto-clients ffmpeg systemd chromium chromium-driver)
# torch and torchvision are pinned as a pair, installed first, and held by a constraints file so the export
# extra neither upgrades torch nor brings a second one. The pair must import together: the CPU-only torch
# 2.13.0 of the local index has no CPU torchvision to go with it (PyPI's torchvision 0.28.0 for x86_64 links
# libtorch_cuda and fails with "operator torchvision::nms does not exist"), and Ultralytics' export needs
# torchvision, so the dev venv takes the 2.14.1 pair and with it torch's CUDA libraries. On arm64 (a Pi) the
# 2.9.1 pair is a CPU build of about 0.7 GB.
if [[ "$(uname -m)" == aarch64 ]]; then
    torch_pin="torch==2.9.1"
    torchvision_pin="torchvision==0.24.1"
else
    torch_pin="torch==2.14.1"
    torchvision_pin="torchvision==0.29.1"
fi

dev_install() {
    local venv="$here/.venv"
    local stamp="$venv/.putt-daemon-installed"
    local want
    want="$(printf '%s\n' "$torch_pin" "$torchvision_pin" checkout-path | cat "$here/pyproject.toml" - | sha256sum | cut -d' ' -f1)"
    mapfile -t missing < <(missing_apt "${dev_apt[@]}")

    local plan=()
    if [ "${#missing[@]}" -eq 0 ]; then
        say "apt packages already installed"
    else
        plan+=("apt packages on this host: ${missing[*]}")
    fi
    if [ -x "$venv/bin/python" ]; then
        say "$venv exists"
    else
        plan+=("create $venv")
    fi
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$venv/bin/python" -c 'import daemon' 2>/dev/null; then
        say "package already installed ($torch_pin, putt-daemon[dev,export])"
    else
        plan+=("install $torch_pin and $torchvision_pin into $venv, then putt-daemon[dev,export]")
        plan+=("keep opencv-python-headless only (ultralytics asks for opencv-python)")
    fi
    if [ "${#plan[@]}" -eq 0 ]; then
        say "nothing to change"
        return 0
    fi
    say "will change:"
    printf '    - %s\n' "${plan[@]}"
    [ "${#missing[@]}" -eq 0 ] || show_apt_plan "${missing[@]}"

    if [ "${#missing[@]}" -gt 0 ]; then
        say "apt packages"
        install_apt "${missing[@]}"
    fi
    if [ ! -x "$venv/bin/python" ]; then
        say "virtual environment $venv"
        "$(python_bin)" -m venv "$venv"
    fi
    say "torch, then the package with the dev and export extras"
    local pip=("$venv/bin/pip" install --disable-pip-version-check)
    local constraints
    constraints="$(mktemp)"
    printf '%s\n%s\n' "$torch_pin" "$torchvision_pin" >"$constraints"
    quiet_pip "${pip[@]}" "$torch_pin" "$torchvision_pin"
    quiet_pip "${pip[@]}" -c "$constraints" -e "${here}[dev,export]"
    rm -f "$constraints"
    # Two OpenCV wheels share the cv2 folder; removing one breaks the other, so the headless one is reinstalled.
    if "$venv/bin/pip" show opencv-python >/dev/null 2>&1; then
        local headless
        headless="$("$venv/bin/pip" show opencv-python-headless | sed -n 's/^Version: //p')"
        quiet_pip "$venv/bin/pip" uninstall -y opencv-python
        quiet_pip "${pip[@]}" --force-reinstall --no-deps "opencv-python-headless==$headless"
    fi
    # The checkout's tools/ and bench/ are not part of the package; this path makes them importable from any
    # folder, and their files runnable as plain scripts.
    "$venv/bin/python" -c 'import sys, sysconfig; print(sysconfig.get_paths()["purelib"])' |
        { read -r purelib; echo "$here" >"$purelib/putt-daemon-checkout.pth"; }
    "$venv/bin/python" -c 'import daemon, tools, bench, cv2, onnxruntime, paho.mqtt, systemd.journal, torchvision, ultralytics'
    echo "$want" >"$stamp"
    say "done: $venv/bin/putt-daemon ($(du -sh "$venv" | cut -f1))"
}

# =====================================================================================================
# System mode: the box's layout, under $root ("" on the box itself)
# =====================================================================================================

user=putt-daemon
system_apt=(python3-venv python3-dev gcc pkg-config libsystemd-dev v4l-utils)
prefix=/opt/putt-daemon
confdir=/etc/putt-daemon
statedir=/var/lib/putt-daemon
unit=/etc/systemd/system/putt-daemon.service
applying=0
changes=0
program_changed=0

# The id of NAME in $root's passwd or group file (empty when absent).
uid_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$root/etc/passwd"; }
gid_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$root/etc/group"; }
in_group() {
    awk -F: -v g="$2" -v u="$1" '$1 == g { n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) f = 1 }
        END { exit !f }' "$root/etc/group"
}

# One change: listed in the planning pass, carried out in the applying pass.
change() {
    changes=$((changes + 1))
    if [ "$applying" -eq 0 ]; then
        echo "    - $1"
        return 1
    fi
    echo "    $1"
    return 0
}

# "MODE UID GID" of PATH, as wanted: MODE in octal without leading zeros.
meta_of() { stat -c '%a %u %g' "$1" 2>/dev/null; }
wanted_meta() { echo "$((8#$1)) $2 $3" | awk '{ printf "%o %s %s\n", $1, $2, $3 }'; }

ensure_dir() {
    local path="$1" mode="$2" owner="$3" group="$4"
    local uid gid
    uid="$(uid_of "$owner")"
    gid="$(gid_of "$group")"
    if [ ! -d "$root$path" ]; then
        change "create $path/ ($mode $owner:$group)" || return 0
        install -d -m "$mode" -o "$(uid_of "$owner")" -g "$(gid_of "$group")" "$root$path"
    elif [ "$(meta_of "$root$path")" != "$(wanted_meta "$mode" "${uid:-?}" "${gid:-?}")" ]; then
        change "set $path/ to $mode $owner:$group" || return 0
        chown "$(uid_of "$owner"):$(gid_of "$group")" "$root$path"
        chmod "$mode" "$root$path"
    fi
}

# SOURCE to PATH. With "keep", an existing PATH is the operator's and is left as it is.
ensure_file() {
    local source="$1" path="$2" mode="$3" owner="$4" group="$5" keep="${6:-}"
    local uid gid
    uid="$(uid_of "$owner")"
    gid="$(gid_of "$group")"
    local what
    if [ ! -f "$root$path" ]; then
        what="create $path ($mode $owner:$group)"
    elif [ -n "$keep" ]; then
        return 0
    elif ! cmp -s "$source" "$root$path"; then
        what="replace $path"
    elif [ "$(meta_of "$root$path")" != "$(wanted_meta "$mode" "${uid:-?}" "${gid:-?}")" ]; then
        what="set $path to $mode $owner:$group"
    else
        return 0
    fi
    [ "$path" != "$unit" ] || program_changed=1
    change "$what" || return 0
    install -m "$mode" -o "$(uid_of "$owner")" -g "$(gid_of "$group")" "$source" "$root$path.new"
    mv -f "$root$path.new" "$root$path"
}

# A symbolic link PATH -> TARGET (the operator's `putt-daemon` on PATH).
ensure_link() {
    local target="$1" path="$2"
    [ "$(readlink "$root$path" 2>/dev/null)" != "$target" ] || return 0
    change "link $path -> $target" || return 0
    ln -sfn "$target" "$root$path"
}

ensure_user() {
    if [ -z "$(gid_of video)" ] && change "create group video"; then
        groupadd "${prefix_arg[@]}" --system video
    fi
    if [ -z "$(uid_of "$user")" ]; then
        change "create system user $user (own group, member of video, home $statedir, no login)" || return 0
        useradd "${prefix_arg[@]}" --system --user-group --groups video --home-dir "$statedir" \
            --no-create-home --shell /usr/sbin/nologin "$user"
    elif ! in_group "$user" video; then
        change "add $user to group video" || return 0
        usermod "${prefix_arg[@]}" --append --groups video "$user"
    fi
}

# What the venv was built from: pyproject and the package's files.
source_digest() {
    (cd "$here" && find pyproject.toml daemon -type f ! -name '*.pyc' -print0 | sort -z |
        xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}

ensure_venv() {
    local venv="$root$prefix/venv"
    local stamp="$venv/.putt-daemon-source"
    local want
    want="$(source_digest)"
    if [ -x "$venv/bin/putt-daemon" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    program_changed=1
    change "install putt-daemon and its runtime dependencies into $prefix/venv" || return 0
    [ -x "$venv/bin/python" ] || "$(python_bin)" -m venv "$venv"
    # Built from a copy, so the checkout gets no build/ or egg-info folders.
    local build
    build="$(mktemp -d)"
    (cd "$here" && cp -r pyproject.toml README.md daemon "$build/")
    find "$build" -name __pycache__ -prune -exec rm -rf {} +
    quiet_pip "$venv/bin/pip" install --disable-pip-version-check --upgrade "$build"
    rm -rf "$build"
    "$venv/bin/python" -c 'import daemon, cv2, onnxruntime, paho.mqtt, systemd.journal'
    echo "$want" >"$stamp"
}

# The template with the installed model and calibration named, so the daemon finds both.
env_file_source() {
    sed -e "s|^#PUTT_MODEL_PATH=.*|PUTT_MODEL_PATH=$statedir/models/ball.onnx|" \
        -e "s|^#PUTT_MODEL_VERIFIER=.*|PUTT_MODEL_VERIFIER=$statedir/models/ball_verifier.onnx|" \
        -e "s|^#PUTT_CALIBRATION_FILE=.*|PUTT_CALIBRATION_FILE=$confdir/calibration.json|" \
        "$here/config/putt-daemon.env.example"
}

systemd_running() { [ -z "$root" ] && [ -d /run/systemd/system ]; }

ensure_service() {
    systemd_running || return 0
    if [ "$program_changed" -eq 1 ]; then
        change "systemctl daemon-reload" && systemctl daemon-reload
    fi
    if ! systemctl is-enabled --quiet putt-daemon 2>/dev/null || ! systemctl is-active --quiet putt-daemon; then
        change "systemctl enable --now putt-daemon" && systemctl enable --now putt-daemon
    elif [ "$program_changed" -eq 1 ]; then
        change "systemctl restart putt-daemon (new program or unit)" && systemctl restart putt-daemon
    fi
    return 0
}

system_steps() {
    if [ -z "$root" ]; then
        mapfile -t missing < <(missing_apt "${system_apt[@]}")
        if [ "${#missing[@]}" -gt 0 ] && change "apt packages: ${missing[*]}"; then
            install_apt "${missing[@]}"
        elif [ "${#missing[@]}" -gt 0 ]; then
            show_apt_plan "${missing[@]}"
        fi
    fi
    ensure_user
    ensure_dir "$prefix" 0755 root root
    [ "$with_venv" -eq 0 ] || ensure_venv
    ensure_dir /usr/local/bin 0755 root root
    ensure_link "$prefix/venv/bin/putt-daemon" /usr/local/bin/putt-daemon
    ensure_file "$here/README.md" "$prefix/README.md" 0644 root root
    ensure_dir "$prefix/docs" 0755 root root
    ensure_file "$here/docs/operations.md" "$prefix/docs/operations.md" 0644 root root
    ensure_dir "$confdir" 0750 root "$user"
    ensure_file "$env_source" "$confdir/putt-daemon.env" 0640 root "$user" keep
    ensure_file "$here/config/calibration.json" "$confdir/calibration.json" 0640 root "$user" keep
    ensure_dir "$statedir" 0750 "$user" "$user"
    ensure_dir "$statedir/models" 0750 "$user" "$user"
    ensure_file "$here/models/ball.onnx" "$statedir/models/ball.onnx" 0644 "$user" "$user" keep
    ensure_file "$here/models/ball.json" "$statedir/models/ball.json" 0644 "$user" "$user" keep
    ensure_file "$here/models/ball_verifier.onnx" "$statedir/models/ball_verifier.onnx" 0644 "$user" "$user" keep
    ensure_file "$here/models/ball_verifier.json" "$statedir/models/ball_verifier.json" 0644 "$user" "$user" keep
    ensure_dir /etc/systemd/system 0755 root root
    ensure_file "$here/systemd/putt-daemon.service" "$unit" 0644 root root
    ensure_service
}

# `putt-daemon check-config` as the service runs it: its user and groups, a clean environment.
check_config() {
    local cli="$root$prefix/venv/bin/putt-daemon"
    local env=(env -i PATH=/usr/bin:/bin LANG=C.UTF-8 HOME="$root$statedir" STATE_DIRECTORY="$root$statedir")
    local args=()
    if [ -n "$root" ]; then
        # The env file names the box's paths; in a staging root they are under DIR.
        env+=(PUTT_MODEL_PATH="$root$statedir/models/ball.onnx" PUTT_CALIBRATION_FILE="$root$confdir/calibration.json"
              PUTT_MODEL_VERIFIER="$root$statedir/models/ball_verifier.onnx")
        args=(--env-file "$root$confdir/putt-daemon.env")
    fi
    say "putt-daemon check-config as $user"
    if ! "${env[@]}" setpriv --reuid="$(uid_of "$user")" --regid="$(gid_of "$user")" \
        --groups="$(gid_of video)" -- "$cli" check-config "${args[@]}" 2>&1 | sed 's/^/    /'; then
        die "check-config refused the settings above: fix $confdir/putt-daemon.env and run install.sh again"
    fi
}

system_install() {
    [ "$(id -u)" -eq 0 ] || die "the system install needs root (or use --dev)"
    if [ -n "$root" ]; then
        if [ ! -f "$root/etc/passwd" ] || [ ! -f "$root/etc/group" ]; then
            die "$root/etc/passwd and $root/etc/group must exist"
        fi
        prefix_arg=(--prefix "$root")
    else
        prefix_arg=()
    fi
    env_source="$(mktemp)"
    trap 'rm -f "$env_source"' EXIT
    env_file_source >"$env_source"

    say "planning the install into ${root:-/}"
    system_steps
    if [ "$changes" -eq 0 ]; then
        say "nothing to change: putt-daemon is installed as this version ships it"
    else
        say "applying $changes change(s)"
        applying=1
        changes=0
        program_changed=0
        system_steps
    fi
    if [ "$with_venv" -eq 1 ]; then
        check_config
    fi
    systemd_running || echo "    systemd is not running here: start the service with 'systemctl enable --now putt-daemon' on the box"
}

# Removes only what a new install brings back; settings, calibration, models and data stay.
uninstall_steps() {
    if systemd_running && systemctl is-enabled --quiet putt-daemon 2>/dev/null; then
        change "systemctl disable --now putt-daemon" && systemctl disable --now putt-daemon
    fi
    if [ -f "$root$unit" ]; then
        change "remove $unit" && rm -f "$root$unit"
        if systemd_running; then
            change "systemctl daemon-reload" && systemctl daemon-reload
        fi
    fi
    if [ -e "$root$prefix" ]; then
        change "remove $prefix/ (the program)" && rm -rf "${root:?}$prefix"
    fi
    if [ -L "$root/usr/local/bin/putt-daemon" ]; then
        change "remove /usr/local/bin/putt-daemon" && rm -f "$root/usr/local/bin/putt-daemon"
    fi
    return 0
}

uninstall() {
    [ "$(id -u)" -eq 0 ] || die "--uninstall needs root"
    say "planning the removal from ${root:-/}"
    uninstall_steps
    if [ "$changes" -eq 0 ]; then
        say "nothing to change: putt-daemon is not installed"
    else
        say "applying $changes change(s)"
        applying=1
        changes=0
        uninstall_steps
    fi
    echo "    kept: $confdir (settings, calibration), $statedir (sessions, spool, models), the user $user"
}

case "$mode" in
    dev) dev_install ;;
    system) system_install ;;
    uninstall) uninstall ;;
esac
