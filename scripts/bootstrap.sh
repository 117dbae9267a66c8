#!/usr/bin/env bash
# Set up everything the harness needs on a Debian/Ubuntu machine, then run the main job:
# build the host server, boot it, handshake and print what the device says about itself.
#
#   scripts/bootstrap.sh              install + main job
#   scripts/bootstrap.sh --no-run     install only (what .ci/run uses)
#   scripts/bootstrap.sh --zephyr     also make a Zephyr 2.5.0 workspace at ~/zephyrproject
#                                     (west init + west update; needs network), unless one
#                                     is found already (ZEPHYR_BASE or ~/zephyrproject)
#
# Needs root or sudo for apt. Safe to run again: every step is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

run_main_job=1
want_zephyr=0
for arg in "$@"; do
    case "$arg" in
        --no-run) run_main_job=0 ;;
        --zephyr) want_zephyr=1 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "bootstrap.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
    esac
done

# ser2net: a labgrid exporter shares serial ports with it (the local lab of tests/labgrid).
APT_PACKAGES=(cmake ninja-build gcc libc6-dev gcc-arm-none-eabi libnewlib-arm-none-eabi
              qemu-system-arm device-tree-compiler git ser2net)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "bootstrap: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PYTHON="${PYTHON:-python3}"
echo "bootstrap: installing the harness and its Python dependencies with $PYTHON -m pip"
# labgrid (shared labs, docs/labgrid.md) is installed too, so that its tests run; it brings
# pyserial-labgrid, its fork of pyserial.
"$PYTHON" -m pip install -q --disable-pip-version-check -e '.[test,labgrid]'

# Zephyr: use the workspace there is; make one the ordinary way only when asked.
zephyr_base="${ZEPHYR_BASE:-$HOME/zephyrproject/zephyr}"
if [ ! -f "$zephyr_base/VERSION" ] && ((want_zephyr)); then
    echo "bootstrap: creating a Zephyr v2.5.0 workspace at ~/zephyrproject (west init + update)"
    "$PYTHON" -m pip install -q --disable-pip-version-check west
    west init -m https://github.com/zephyrproject-rtos/zephyr --mr v2.5.0 "$HOME/zephyrproject"
    (cd "$HOME/zephyrproject" && west update)
    zephyr_base="$HOME/zephyrproject/zephyr"
fi
if [ -f "$zephyr_base/scripts/requirements-base.txt" ]; then
    echo "bootstrap: Zephyr found at $zephyr_base; installing its Python requirements"
    "$PYTHON" -m pip install -q --disable-pip-version-check -r "$zephyr_base/scripts/requirements-base.txt"
else
    echo "bootstrap: no Zephyr workspace (QEMU board tests will skip); use --zephyr to make one"
fi

if ((run_main_job)); then
    echo "bootstrap: main job: build the host board, boot it, handshake, call rpc.info"
    "$PYTHON" -m harness info --board host
fi
