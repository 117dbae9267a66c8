"""Fault-injection soak: N calls through a seeded bad line, then proof that the link recovered.

docs/protocol.md and docs/reset-semantics.md promise that line noise, torn frames and console
text are dropped, never delivered as data, and never need a reboot. This soak checks all three
under load (docs/fault-injection.md): every value that comes back is right, every call that
fails says why with a typed error, the link always recovers once the line is clean (a new
session and a call work at once), and the device is still on the boot it started on.

Everything random comes from the run's seed (``--seed``), so a failure prints the command that
replays it.
"""

from __future__ import annotations

import binascii
import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import NoReturn

import pytest

from harness.boards import Board
from harness.client import Client
from harness.errors import HarnessError
from harness.protocol.rpc import max_echo_payload
from harness.targets.base import Target
from harness.transport.faulty import FaultProfile, FaultyTransport

from .helpers import device_info

# The per-call deadline is derived from the slowest clean round trip of the largest call the
# soak makes (measured on this device, faults off), with this margin, never below the floor:
# long enough that a clean call never times out on a busy machine, short enough that the
# calls a fault loses (most failures are lost frames) do not dominate the soak's duration.
ROUND_TRIP_MARGIN = 5.0
CALL_TIMEOUT_FLOOR_S = 0.25
CALIBRATION_ROUNDS = 5
# Stalls a call may meet (one per direction) on top of its round trip.
STALLS_PER_CALL = 2
MAX_DATA = 512
"""Largest rpc.echo and rpc.crc16 argument: a few frames this size keep every fault likely
without letting the slow QEMU UARTs dominate the run time."""
ESCAPE_HEAVY = b"\xff\xfd\xfe"
PROBE = b"\xff\xfd\xfe clean line \xff"


@dataclass(frozen=True)
class _Call:
    """One call of the soak and the value a correct device returns."""

    name: str
    args: tuple[object, ...]
    expected: object

    def describe(self) -> str:
        shown = ", ".join(
            f"<{len(a)} bytes>" if isinstance(a, bytes) and len(a) > 16 else repr(a)
            for a in self.args
        )
        return f"{self.name}({shown})"


def _data(rng: random.Random, size: int) -> bytes:
    """Bytes with plenty of FF, FD and FE, the ones the framing escapes or reacts to."""
    return bytes(
        rng.choice(ESCAPE_HEAVY) if rng.random() < 0.3 else rng.randrange(256) for _ in range(size)
    )


def _int64_sum(a: int, b: int) -> int:
    return (a + b + (1 << 63)) % (1 << 64) - (1 << 63)


def _echo(data: bytes) -> _Call:
    return _Call("rpc.echo", (data,), data)


def _add(a: int, b: int) -> _Call:
    return _Call("rpc.add", (a, b), _int64_sum(a, b))


def _crc16(data: bytes) -> _Call:
    # The stdlib's CRC-CCITT with the FALSE variant's initial value: an oracle independent of
    # the harness's own framing code.
    return _Call("rpc.crc16", (data,), binascii.crc_hqx(data, 0xFFFF))


def _next_call(rng: random.Random, max_data: int) -> _Call:
    name = rng.choices(("rpc.echo", "rpc.add", "rpc.crc16"), weights=(5, 3, 2))[0]
    if name == "rpc.add":
        return _add(rng.randint(-(1 << 63), (1 << 63) - 1), rng.randint(-(1 << 63), (1 << 63) - 1))
    # Mostly short frames, some long ones: both kinds of frame meet every fault.
    size = rng.randint(0, 48) if rng.random() < 0.6 else rng.randint(49, max_data)
    data = _data(rng, size)
    return _echo(data) if name == "rpc.echo" else _crc16(data)


def _per_call_timeout(client: Client, board: Board, profile: FaultProfile, max_data: int) -> str:
    """Measure the slowest clean round trip of the largest calls and return the explanation of
    the per-call deadline set on ``client.call_timeout``."""
    largest = (_echo(b"\xff" * max_data), _crc16(b"\xff" * max_data), _add(-1, 1))
    slowest = 0.0
    for _ in range(CALIBRATION_ROUNDS):
        for call in largest:
            started = time.monotonic()
            result = client.call(call.name, *call.args)
            slowest = max(slowest, time.monotonic() - started)
            assert result == call.expected, f"clean {call.describe()} returned {result!r}"
    stalls = STALLS_PER_CALL * profile.max_delay_s
    timeout = min(board.timeouts.call, max(CALL_TIMEOUT_FLOOR_S, ROUND_TRIP_MARGIN * slowest))
    client.call_timeout = timeout + stalls
    return (
        f"per-call timeout {client.call_timeout * 1000:.0f} ms = max({CALL_TIMEOUT_FLOOR_S * 1000:.0f}"
        f" ms floor, {ROUND_TRIP_MARGIN:g} x slowest clean round trip {slowest * 1000:.1f} ms)"
        f" + {STALLS_PER_CALL} x {profile.max_delay_s * 1000:.0f} ms stall"
    )


class _Soak:
    """The soak's state: the client on the faulty line, the tallies and the replay context."""

    def __init__(self, device: Target, board: Board, seed: int, calls: int) -> None:
        self.board = board
        self.seed = seed
        self.calls = calls
        self.replay = (
            f"pytest --board {board.name} tests/device/test_fault_soak.py "
            f"--seed {seed} --fault-soak {calls}"
        )
        self.profile = FaultProfile()
        self.faults_in_call: list[str] = []
        self.faulty = FaultyTransport(
            device.transport,
            seed=seed,
            profile=self.profile,
            on_fault=self._on_fault,
            enabled=False,
        )
        self._trace = device.trace
        self.client = Client.for_target(device)
        self.client.transport = self.faulty
        self.outcomes: Counter[str] = Counter()

    def _on_fault(self, description: str) -> None:
        """Each fault goes with the call it hit and into the wire trace, next to its bytes."""
        self.faults_in_call.append(description)
        self._trace.note("fault", description)

    def fail(self, index: int, call: _Call, problem: str) -> NoReturn:
        faults = "\n  ".join(self.faults_in_call) or "(none)"
        pytest.fail(
            f"call {index} of {self.calls}, {call.describe()}: {problem}\n"
            f"faults injected during this call:\n  {faults}\n"
            f"seed {self.seed}; outcomes so far: {dict(self.outcomes)}\n"
            f"faults injected so far: {self.faulty.summary()}\n"
            f"replay: {self.replay}",
            pytrace=False,
        )

    def run_call(self, index: int, call: _Call) -> None:
        """One call through the faulty line: a right value, or a typed error and a recovery."""
        self.faults_in_call.clear()
        try:
            result = self.client.call(call.name, *call.args)
        except HarnessError as exc:
            self.outcomes[type(exc).__name__] += 1
            self.recover(index, call, exc)
            return
        except Exception as exc:  # the report names it: only HarnessError may escape a call
            self.fail(index, call, f"raised {type(exc).__name__}, not a HarnessError: {exc}")
        if type(result) is not type(call.expected) or result != call.expected:
            self.fail(index, call, f"returned a WRONG value {result!r}, expected {call.expected!r}")
        self.outcomes["ok"] += 1

    def recover(self, index: int, call: _Call, error: HarnessError) -> None:
        """On a clean line, a new session and a call must work: the device never needs a reboot
        to get over line noise (docs/reset-semantics.md)."""
        self.faulty.faults_enabled = False
        try:
            self.client.reconnect()
            echoed = self.client.call("rpc.echo", PROBE, timeout=self.board.timeouts.call)
        except HarnessError as exc:
            self.fail(
                index,
                call,
                f"failed with {type(error).__name__}, then the link did NOT recover on a clean "
                f"line: {type(exc).__name__}: {exc}",
            )
        if echoed != PROBE:
            self.fail(index, call, f"the clean probe after recovery returned {echoed!r}")
        self.faulty.faults_enabled = True

    def report(self, setup: str, elapsed: float) -> str:
        outcomes = ", ".join(f"{name} {count}" for name, count in self.outcomes.most_common())
        stats = self.client.stats
        framing = self.client.session.stats.framing
        return "\n".join(
            (
                f"fault soak on board {self.board.name}: seed {self.seed}, {self.calls} calls in "
                f"{elapsed:.1f} s",
                f"  {setup}",
                f"  outcomes: {outcomes}",
                f"  faults injected: {sum(self.faulty.injected.values())}; {self.faulty.summary()}",
                f"  client: {stats.handshakes} handshakes, {stats.ignored_messages} messages "
                f"ignored, {stats.stray_replies} stray replies; host unframer: {framing}",
                f"  replay: {self.replay}",
            )
        )


def test_fault_soak(device: Target, board: Board, seed: int, pytestconfig: pytest.Config) -> None:
    calls = pytestconfig.getoption("--fault-soak")
    soak = _Soak(device, board, seed, calls)
    print(f"\nfault soak: seed {seed}, {calls} calls; replay: {soak.replay}")
    client = soak.client
    try:
        client.handshake(board.timeouts.boot + board.timeouts.handshake)
        before = device_info(client)
        max_data = min(MAX_DATA, max_echo_payload(board.max_packet))
        setup = _per_call_timeout(client, board, soak.profile, max_data)
        rng = random.Random(f"fault-soak:{seed}")
        started = time.monotonic()
        soak.faulty.faults_enabled = True
        for index in range(calls):
            soak.run_call(index, _next_call(rng, max_data))
        soak.faulty.faults_enabled = False
        elapsed = time.monotonic() - started
        after = device_info(client)
    finally:
        client.close()
    print(soak.report(setup, elapsed))

    assert sum(soak.outcomes.values()) == calls
    assert (after["boot_id"], after["boot_count"]) == (before["boot_id"], before["boot_count"]), (
        f"the device rebooted during the soak (seed {seed}): before {before}, after {after}; "
        f"line noise must never need a reboot. Replay: {soak.replay}"
    )
    if calls >= 100:
        # A soak whose line was clean, or so bad that nothing got through, tested nothing.
        failed = calls - soak.outcomes["ok"]
        assert sum(soak.faulty.injected.values()) > 0, "no fault was injected"
        assert 0 < failed < calls, (
            f"outcomes {dict(soak.outcomes)}: the line was never faulty enough to lose a call, "
            "or never clean enough to pass one"
        )
