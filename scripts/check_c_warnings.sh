#!/bin/sh
# Compile every source of the portable RPC server with the host gcc and with arm-none-eabi-gcc
# (Cortex-M3, freestanding) and fail on any warning. The ARM build is the proof that the library
# needs no OS headers: -ffreestanding with newlib's string.h only.
#
# Usage: scripts/check_c_warnings.sh [extra CFLAGS...]   (e.g. -DRPC_SERVER_MAX_PACKET=256)
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
src="$root/zephyr_app/rpc_server"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

common="-std=c11 -Wall -Wextra -Werror -pedantic -Wshadow -Wconversion -Wno-sign-conversion
	-Wstrict-prototypes -Wmissing-prototypes -I$src/include -I$root/zephyr_app/faults"
status=0

check() {
	cc=$1
	shift
	if ! command -v "$cc" >/dev/null 2>&1; then
		echo "check_c_warnings: $cc not found" >&2
		status=1
		return
	fi
	# The portable server, and the fault functions both firmwares share (also OS-free).
	for file in "$src"/src/*.c "$root"/zephyr_app/faults/*.c; do
		name=$(basename "$file" .c)
		# shellcheck disable=SC2086
		if ! "$cc" $common "$@" -c "$file" -o "$out/$cc-$name.o" 2>"$out/log"; then
			echo "FAIL $cc $name.c" >&2
			cat "$out/log" >&2
			status=1
		elif [ -s "$out/log" ]; then
			echo "WARN $cc $name.c" >&2
			cat "$out/log" >&2
			status=1
		else
			echo "ok   $cc $name.c"
		fi
	done
}

extra="$*"
# shellcheck disable=SC2086
check gcc -O2 $extra
# shellcheck disable=SC2086
check arm-none-eabi-gcc -mcpu=cortex-m3 -mthumb -Os -ffreestanding $extra

exit $status
