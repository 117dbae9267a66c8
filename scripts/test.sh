#!/usr/bin/env bash
# Run every check CI runs: lint, C warnings on host gcc and arm-none-eabi-gcc, the unit and
# vector tests, the device suite on the `host` board and again under ASan + UBSan, and the C
# vector and differential tests against the sanitized C library.
# Extra arguments go to every pytest run (for example -x or -k handshake).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

echo "== ruff"
"$PYTHON" -m ruff check .
"$PYTHON" -m ruff format --check .

echo "== C server: -Wall -Wextra -Werror on host gcc and arm-none-eabi-gcc"
scripts/check_c_warnings.sh

echo "== unit, vector and differential tests + device suite on board host"
"$PYTHON" -m pytest --board host "$@"

echo "== device suite on board host_asan (AddressSanitizer + UndefinedBehaviorSanitizer)"
"$PYTHON" -m pytest --board host_asan tests/device "$@"

echo "== C vectors and differential fuzzing against the sanitized C library"
RPC_C_BUILD_DIR=build/host_asan \
LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)" \
ASAN_OPTIONS=detect_leaks=0 \
    "$PYTHON" -m pytest tests/unit/test_c_vectors.py tests/unit/test_differential.py "$@"

echo "== device suite on board pty_host (pyserial on a pty; flash, reset and power by command)"
"$PYTHON" -m harness.pty_board run --state build/pty_host --build-dir build -- \
    "$PYTHON" -m pytest --board pty_host --build-dir=build tests/device "$@"

if "$PYTHON" -c "import sys; from harness.zephyr import has_zephyr; sys.exit(has_zephyr() is not None)"; then
    for board in qemu_cortex_m3 mps2_an385; do
        echo "== device suite on board $board (Zephyr in QEMU)"
        "$PYTHON" -m pytest --board "$board" tests/device "$@"
    done
else
    echo "== QEMU boards skipped: $("$PYTHON" -c "from harness.zephyr import has_zephyr; print(has_zephyr())")"
fi
