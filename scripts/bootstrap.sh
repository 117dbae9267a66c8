#!/usr/bin/env bash
# Set up everything the harness needs on a Debian/Ubuntu machine, then run the main job:
# build the host server, boot it, handshake and print what the device says about itself.
#
#   scripts/bootstrap.sh            install + main job
#   scripts/bootstrap.sh --no-run   install only (what .ci/run uses)
#
# Needs root or sudo for apt. Safe to run again: every step is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

run_main_job=1
for arg in "$@"; do
    case "$arg" in
        --no-run) run_main_job=0 ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "bootstrap.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
    esac
done

APT_PACKAGES=(cmake ninja-build gcc libc6-dev gcc-arm-none-eabi libnewlib-arm-none-eabi)

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
"$PYTHON" -m pip install -q --disable-pip-version-check -e '.[test]'

if ((run_main_job)); then
    echo "bootstrap: main job: build the host board, boot it, handshake, call rpc.info"
    "$PYTHON" -m harness info --board host
fi
