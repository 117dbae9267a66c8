"""Reset-to-ready time: from issuing a reset to the first successful call, per reset kind.

    python benchmarks/bench_reset.py --board qemu_cortex_m3
    python benchmarks/bench_reset.py --board host --resets 50
    python benchmarks/bench_reset.py --board all --build-dir /tmp/build-bench

A benchmark, not a test: it prints figures, and ratios against a baseline measured in the
same run (these machines are shared and noisy), and fails only if the device misbehaves.
The baseline is a *host restart*: a new client handshakes with the running device and
makes its first call, with no reset at all; what a reset kind costs beyond that is the
reboot itself. The kinds measured are whatever ``reset_kinds`` boards.yaml gives the board.

Every measurement is checked through ``rpc.info`` (untimed): the boot id must change, and
the reset cause and boot count must be what the device suite expects
(``tests/device/helpers.py``), so a reset that silently did nothing fails the run instead of
producing a flattering figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.boards import Board, load_boards
from harness.build import PROJECT_ROOT
from harness.client import Client
from harness.connect import DEFAULT_BOARDS_FILE, DEFAULT_BUILD_ROOT
from harness.errors import HarnessError, ToolchainNotFound, ZephyrNotFound
from harness.protocol.framing import Unframer
from harness.protocol.session import MessageType, decode_message
from harness.targets.base import Target, make_target
from harness.transport.base import Transport

BASELINE = "host restart"
DEFAULT_RESETS = 100  # 12-22 s of resets per QEMU board on the 2-vCPU development VM


class ResetCheckError(AssertionError):
    """The device did not reboot the way the reset kind says (or rebooted when it must not)."""


def _reset_expectations() -> tuple[dict[str, str], Callable[[str, int], int]]:
    """The device suite's table of reset causes and boot counts, so both agree by
    construction: a kind added to boards.yaml and the suite is measured here unchanged."""
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    from tests.device.helpers import EXPECTED_CAUSE, expected_boot_count

    return EXPECTED_CAUSE, expected_boot_count


class WakeupClock(Transport):
    """Passes bytes through to the client and notes when the wake-up arrives.

    The client awaits the boot's TerminateSession inside ``reset()`` (in-band kinds) or
    inside ``reconnect()`` (physical kinds), and the harness offers no hook there. Watching
    the bytes on their way in, with a sans-IO unframer of our own, times that moment without
    changing harness code or what the client sees.
    """

    def __init__(self, inner: Transport, max_payload: int) -> None:
        self.inner = inner
        self._max_payload = max_payload
        self._unframer = Unframer(max_payload)
        self.wakeup_at: float | None = None
        self._armed = False

    def arm(self) -> None:
        """Start watching for the next wake-up (call just before the reset)."""
        self._unframer = Unframer(self._max_payload)  # a fresh line: no stale partial frame
        self.wakeup_at = None
        self._armed = True

    @property
    def description(self) -> str:
        return self.inner.description

    def write(self, data: bytes) -> None:
        self.inner.write(data)

    def read(self, timeout: float) -> bytes:
        data = self.inner.read(timeout)
        if data and self._armed:
            now = time.perf_counter()
            for payload in self._unframer.feed(data):
                try:
                    session_id, msg_type, _ = decode_message(payload)
                except HarnessError:
                    continue  # the client counts and reports malformed messages itself
                # Id 0 is the boot's wake-up (docs/protocol.md); a firmware that first ended
                # the old session (its own id) before rebooting must not stop the clock early.
                if msg_type is MessageType.TERMINATE_SESSION and session_id == 0:
                    self.wakeup_at = now
                    self._armed = False
                    break
        return data

    def close(self) -> None:
        self.inner.close()


@dataclass
class Sample:
    """One reset (or host restart), as durations in seconds from the previous milestone."""

    reset_call: float | None  # how long device.reset() itself took (None: baseline)
    wakeup: float | None  # issued -> wake-up TerminateSession seen (None: baseline)
    session: float  # wake-up (baseline: new client) -> session established
    first_call: float  # session established -> first call answered

    @property
    def total(self) -> float:
        return (self.wakeup or 0.0) + self.session + self.first_call


@dataclass
class Bench:
    """A started device with a client, plus what was measured on it."""

    board: Board
    target: Target
    clock: WakeupClock
    client: Client
    info: dict[str, Any]
    samples: dict[str, list[Sample]] = field(default_factory=dict)

    def new_client(self) -> Client:
        """A client as a fresh host process would make one, reading through the clock."""
        self.client.close()
        client = Client.for_target(self.target)
        client.transport = self.clock
        self.client = client
        return client

    def ready_timeout(self) -> float:
        # The documented guarantee: a new session within boot + handshake after any reset.
        return self.board.timeouts.boot + self.board.timeouts.handshake


def device_info(client: Client) -> dict[str, Any]:
    raw = client.call("rpc.info")
    if not isinstance(raw, str):
        raise ResetCheckError(f"rpc.info returned {type(raw).__name__}, not a JSON string")
    info = json.loads(raw)
    if not isinstance(info, dict):
        raise ResetCheckError(f"rpc.info returned {raw!r}, not a JSON object")
    return info


def first_call(client: Client) -> None:
    # A new session forgets function handles, so this is a lookup plus a call: what any
    # first call after a reset costs.
    result = client.call("rpc.add", 1, 2)
    if result != 3:
        raise ResetCheckError(f"rpc.add(1, 2) returned {result!r} after the reset")


def host_restart(bench: Bench) -> Sample:
    """The baseline: a new host-side session on a device that keeps running."""
    client = bench.new_client()
    started = time.perf_counter()
    client.handshake()
    established = time.perf_counter()
    first_call(client)
    done = time.perf_counter()
    after = device_info(client)
    before = bench.info
    if after["boot_id"] != before["boot_id"] or after["boot_count"] != before["boot_count"]:
        raise ResetCheckError(
            f"{bench.board.name}: the device rebooted on a host restart "
            f"(before {before}, after {after})"
        )
    bench.info = after
    return Sample(None, None, established - started, done - established)


def reset_once(bench: Bench, kind: str) -> Sample:
    """One reset of ``kind``, timed from issuing it to the first call answered, then checked."""
    causes, boot_count_after = _reset_expectations()
    if kind not in causes:
        raise ResetCheckError(
            f"no expected reset cause for kind {kind!r} in tests/device/helpers.py "
            f"(EXPECTED_CAUSE has {sorted(causes)}): the benchmark cannot check it rebooted"
        )
    client = bench.client
    bench.clock.arm()
    issued = time.perf_counter()
    bench.target.reset(kind)
    returned = time.perf_counter()
    client.reconnect(bench.ready_timeout())
    established = time.perf_counter()
    first_call(client)
    done = time.perf_counter()
    woke = bench.clock.wakeup_at
    if woke is None:
        raise ResetCheckError(
            f"{bench.board.name}: reset({kind!r}) and a new session, but no wake-up "
            "TerminateSession was seen on the line"
        )
    after = device_info(client)
    before = bench.info
    problems = []
    if after["boot_id"] == before["boot_id"]:
        problems.append(f"boot_id unchanged ({after['boot_id']})")
    if after["reset_cause"] != causes[kind]:
        problems.append(f"reset_cause {after['reset_cause']!r}, expected {causes[kind]!r}")
    if after["boot_count"] != boot_count_after(kind, before["boot_count"]):
        problems.append(
            f"boot_count {before['boot_count']} -> {after['boot_count']}, expected "
            f"{boot_count_after(kind, before['boot_count'])}"
        )
    if problems:
        raise ResetCheckError(
            f"{bench.board.name}: reset({kind!r}) did not reboot the device as expected: "
            + "; ".join(problems)
        )
    bench.info = after
    return Sample(returned - issued, woke - issued, established - woke, done - established)


def _rotated(kinds: list[str], offset: int) -> list[str]:
    # Each round starts with a different kind, so no kind always follows the same one.
    offset %= len(kinds)
    return kinds[offset:] + kinds[:offset]


def measure(bench: Bench, rounds: int) -> None:
    """Interleave every kind in each round, so a slow phase of the machine hits them all;
    one untimed round first (caches, page faults, first QEMU restart)."""
    kinds = [BASELINE, *bench.board.reset_kinds]
    bench.samples = {kind: [] for kind in kinds}
    for index in range(rounds + 1):
        for kind in _rotated(kinds, index):
            sample = host_restart(bench) if kind == BASELINE else reset_once(bench, kind)
            if index:
                bench.samples[kind].append(sample)


# -- output ----------------------------------------------------------------------------------


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.2f}"


def report(bench: Bench) -> None:
    base = statistics.median(s.total for s in bench.samples[BASELINE])
    print("\nreset issued -> first successful call (ms); ratio: median / host restart median")
    print(f"{'kind':<14} {'n':>4} {'min':>9} {'median':>9} {'p95':>9} {'ratio':>8}")
    for kind, samples in bench.samples.items():
        totals = [s.total for s in samples]
        median = statistics.median(totals)
        print(
            f"{kind:<14} {len(totals):>4} {_ms(min(totals)):>9} {_ms(median):>9} "
            f"{_ms(_p95(totals)):>9} {median / base:>8.1f}"
        )
    print(
        "\nmedian of each phase (ms); 'reset()' is how long device.reset() took, for reference:"
        "\nphysical kinds return before the wake-up, in-band kinds (rpc, fatal) just after it"
    )
    print(
        f"{'kind':<14} {'reset()':>9} {'wake-up seen':>13} {'session':>9} "
        f"{'first call':>11} {'total':>9}"
    )
    for kind, samples in bench.samples.items():

        def med(values: Iterator[float | None]) -> float | None:
            present = [v for v in values if v is not None]
            return statistics.median(present) if present else None

        print(
            f"{kind:<14} {_ms(med(s.reset_call for s in samples)):>9} "
            f"{_ms(med(s.wakeup for s in samples)):>13} "
            f"{_ms(med(s.session for s in samples)):>9} "
            f"{_ms(med(s.first_call for s in samples)):>11} "
            f"{_ms(med(s.total for s in samples)):>9}"
        )


# -- driver ----------------------------------------------------------------------------------


def run_board(board: Board, args: argparse.Namespace, work: Path) -> None:
    target = make_target(board, build_root=args.build_dir, work_dir=work / board.name)
    target.zephyr_base = args.zephyr_base
    print(f"board {board.name}: building...", flush=True)
    with target:  # build, start; stop and release everything the target holds on the way out
        clock = WakeupClock(target.transport, board.max_packet)
        client = Client.for_target(target)
        client.transport = clock
        client.handshake(board.timeouts.boot + board.timeouts.handshake)
        bench = Bench(board, target, clock, client, device_info(client))
        kinds = ", ".join(board.reset_kinds)
        print(
            f"board {board.name}: {args.resets} rounds of [{BASELINE}, {kinds}], interleaved",
            flush=True,
        )
        started = time.perf_counter()
        measure(bench, args.resets)
        elapsed = time.perf_counter() - started
        report(bench)
        print(f"\n({elapsed:.1f} s; every reset checked: new boot_id, expected reset_cause)")
        bench.client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--board", default="host", help="a board of boards.yaml, or 'all'")
    parser.add_argument("--resets", type=int, default=DEFAULT_RESETS, help="timed rounds")
    parser.add_argument("--boards-file", type=Path, default=DEFAULT_BOARDS_FILE)
    parser.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD_ROOT)
    parser.add_argument("--zephyr-base", type=Path, default=None)
    args = parser.parse_args()
    if args.resets < 1:
        parser.error("--resets must be at least 1")
    boards = load_boards(args.boards_file)
    names = list(boards.boards) if args.board == "all" else [args.board]
    failed = []
    with tempfile.TemporaryDirectory(prefix="bench-reset-") as tmp:
        for name in names:
            board = boards.get(name)
            try:
                run_board(board, args, Path(tmp))
            except (ZephyrNotFound, ToolchainNotFound) as exc:
                if args.board != "all":
                    raise
                print(f"board {name}: skipped, nothing to build it with: {exc}")
            except Exception:
                traceback.print_exc()
                print(f"board {name}: FAILED (see above)")
                failed.append(name)
            print(flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
