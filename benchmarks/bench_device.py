"""Device figures: boot to first call, rpc.echo round trips, bulk throughput vs raw UART echo.

    python benchmarks/bench_device.py --board qemu_cortex_m3
    python benchmarks/bench_device.py --board host --boots 20

A benchmark, not a test: it prints figures and ratios measured in the same run (these
machines are shared and noisy) and fails only if the device misbehaves. The raw UART echo
baseline uses the firmware's ``app.raw_echo(n)``, which hands the next n received bytes
straight back through the same ring buffer and transmit path, without framing or RPC.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness.boards import Board, load_boards
from harness.client import Client, UnknownFunctionError
from harness.connect import DEFAULT_BOARDS_FILE, DEFAULT_BUILD_ROOT
from harness.protocol.rpc import max_echo_payload
from harness.targets.base import Target, make_target

RAW_ECHO_WINDOW = 256  # bytes in flight; see benchmarks/README.md on larger windows


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


def _summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (
        f"min {_ms(ordered[0])}  median {_ms(statistics.median(ordered))}  "
        f"p95 {_ms(p95)}  (n={len(ordered)})"
    )


def _new_target(board: Board, work: Path, index: int) -> Target:
    target = make_target(board, build_root=DEFAULT_BUILD_ROOT, work_dir=work / f"run{index}")
    target.build()
    return target


def boot_to_first_call(board: Board, work: Path, boots: int) -> list[float]:
    samples = []
    for index in range(boots):
        target = _new_target(board, work, index)
        started = time.perf_counter()
        target.start()
        client = Client.for_target(target)
        client.handshake(board.timeouts.boot + board.timeouts.handshake)
        assert client.call("rpc.add", 1, 2) == 3
        samples.append(time.perf_counter() - started)
        client.close()
        target.stop()
        target.trace.close()
    return samples


def round_trips(call: Callable[[], object], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def echo_bulk(client: Client, payload: bytes, seconds: float) -> float:
    """Payload bytes per second carried by back-to-back rpc.echo calls."""
    moved = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        assert client.call("rpc.echo", payload) == payload
        moved += len(payload)
    return moved / (time.perf_counter() - started)


def raw_echo(client: Client, total: int) -> float | None:
    """Bytes per second of a raw UART echo through the same device path, or None."""
    try:
        client.call("app.raw_echo", total)
    except UnknownFunctionError:
        return None
    data = bytes((i * 31 + 7) & 0xFF for i in range(total))
    transport = client.transport
    sent = received = 0
    echoed = bytearray()
    started = time.perf_counter()
    deadline = started + 30
    while received < total:
        if sent < total and sent - received < RAW_ECHO_WINDOW:
            chunk = data[sent : sent + min(128, RAW_ECHO_WINDOW - (sent - received))]
            transport.write(chunk)
            sent += len(chunk)
        got = transport.read(0.001 if sent < total else 1.0)
        echoed += got
        received += len(got)
        if time.perf_counter() > deadline:
            raise TimeoutError(f"raw echo: {received}/{total} bytes back after 30 s")
    elapsed = time.perf_counter() - started
    if bytes(echoed) != data:
        raise AssertionError("raw echo returned different bytes")
    return total / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--board", default="qemu_cortex_m3")
    parser.add_argument("--boots", type=int, default=10)
    parser.add_argument("--small-calls", type=int, default=200)
    parser.add_argument("--max-calls", type=int, default=20)
    parser.add_argument("--bulk-seconds", type=float, default=3.0)
    parser.add_argument("--raw-bytes", type=int, default=32768)
    args = parser.parse_args()
    board = load_boards(DEFAULT_BOARDS_FILE).get(args.board)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        print(f"board {board.name}: building...", flush=True)
        _new_target(board, work, 0)
        boots = boot_to_first_call(board, work, args.boots)
        print(f"boot to first successful call:   {_summary(boots)}")

        target = _new_target(board, work, 999)
        target.start()
        client = Client.for_target(target)
        client.handshake(board.timeouts.boot + board.timeouts.handshake)
        limit = max_echo_payload(board.max_packet)
        big = bytes(range(256)) * (limit // 256) + bytes(limit % 256)
        small = round_trips(lambda: client.call("rpc.echo", b"x"), args.small_calls)
        print(f"rpc.echo 1 byte round trip:      {_summary(small)}")
        large = round_trips(lambda: client.call("rpc.echo", big), args.max_calls)
        print(f"rpc.echo {limit} bytes round trip: {_summary(large)}")
        bulk = echo_bulk(client, big, args.bulk_seconds)
        print(f"bulk through rpc.echo:           {bulk / 1000:8.1f} KB/s of payload each way")
        raw = raw_echo(client, args.raw_bytes)
        if raw is None:
            print("raw UART echo:                   n/a (firmware has no app.raw_echo)")
        else:
            print(f"raw UART byte echo:              {raw / 1000:8.1f} KB/s each way")
            print(f"rpc.echo bulk / raw echo:        {bulk / raw:8.2f}")
        client.close()
        target.stop()
        target.trace.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
