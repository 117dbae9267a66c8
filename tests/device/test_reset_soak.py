"""The reset soak: N random resets, with calls in between, and not one failure allowed.

    pytest --board B tests/device/test_reset_soak.py --reset-soak 1000 [--seed S]

Each round draws a reset kind (from the board's kinds) and a moment (idle, while a function
runs, in the middle of a reply, or at an arbitrary time during a call) from the seed, carries
the reset out, and checks what every reset must give (docs/reset-semantics.md): the call in
flight fails with SessionTerminatedError within the board's reset deadline (or, for the
arbitrary moment only, returns the right value before the reset is reported), a new session
opens, the boot count and reset cause are those of the kind, every boot id is new, and
calls with random data come back right. It is meant for hardware-in-the-loop runs that catch
regressions in reset handling; the default N is small enough for CI.
"""

from __future__ import annotations

import collections
import random
import time

import pytest

from harness.boards import Board
from harness.client import Client
from harness.errors import SessionTerminatedError
from harness.targets.base import Target

from .helpers import EXPECTED_CAUSE, PendingCall, device_info, expected_boot_count, is_inband

MOMENTS = ("idle", "in-function", "mid-reply", "any-time")
SLEEP_MS = 2000


def _reset_at(
    moment: str, kind: str, device: Target, client: Client, board: Board, rng: random.Random
) -> str:
    """Carry out one reset of ``kind`` at ``moment``; returns what the call in flight did."""
    if moment == "idle":
        device.reset(kind)
        return "no call"
    if moment == "in-function":
        if is_inband(kind):
            client.call("app.reset_after_ms", rng.randrange(0, 50), kind)
            with pytest.raises(SessionTerminatedError):
                client.call("rpc.sleep_ms", SLEEP_MS, timeout=board.timeouts.reset)
            return "terminated"
        start = len(device.console)
        pending = PendingCall(client, "rpc.sleep_ms", SLEEP_MS, timeout=board.timeouts.call)
        device.console.wait_for("sleep_ms: sleeping", board.timeouts.call, start=start)
        device.reset(kind)
        outcome = pending.result(board.timeouts.reset)
        assert isinstance(outcome, SessionTerminatedError), outcome
        return "terminated"
    data = rng.randbytes(rng.randrange(1, 600))
    if moment == "mid-reply":
        cut = rng.randrange(0, len(data) + 1)
        if is_inband(kind):
            with pytest.raises(SessionTerminatedError):
                client.call("app.torn_reply", data, cut, kind, timeout=board.timeouts.reset)
            return "terminated"
        start = len(device.console)
        pending = PendingCall(
            client, "app.torn_reply", data, cut, "hang", timeout=board.timeouts.call
        )
        device.console.wait_for("torn reply: hanging", board.timeouts.call, start=start)
        device.reset(kind)
        outcome = pending.result(board.timeouts.reset)
        assert isinstance(outcome, SessionTerminatedError), outcome
        return "terminated"
    # any-time: no synchronisation with the device at all.
    if is_inband(kind):
        client.call("app.reset_after_ms", rng.randrange(0, 20), kind)
    pending = PendingCall(client, "rpc.echo", data, timeout=board.timeouts.call)
    if not is_inband(kind):
        time.sleep(rng.uniform(0, 0.02))  # the random moment itself, not a wait for readiness
        device.reset(kind)
    outcome = pending.result(board.timeouts.reset)
    if outcome == data:  # the reply beat the reset, which must still be reported
        client.await_boot(board.timeouts.reset)
        with pytest.raises(SessionTerminatedError):
            client.call("rpc.add", 1, 1)
        return "replied, then terminated"
    assert isinstance(outcome, SessionTerminatedError), outcome
    return "terminated"


def test_reset_soak(
    device: Target, client: Client, board: Board, seed: int, pytestconfig: pytest.Config
) -> None:
    rounds = int(pytestconfig.getoption("--reset-soak"))
    rng = random.Random(seed)
    replay = (
        f"pytest --board {board.name} tests/device/test_reset_soak.py "
        f"--seed {seed} --reset-soak {rounds}"
    )
    print(f"\nreset soak: board {board.name}, {rounds} resets, seed {seed}\nreplay: {replay}")
    info = device_info(client)
    boot_ids = {info["boot_id"]}
    counts: collections.Counter[str] = collections.Counter()
    worst_s: dict[str, float] = {}
    started = time.monotonic()
    for round_number in range(rounds):
        kind = rng.choice(board.reset_kinds)
        moment = rng.choice(MOMENTS)
        where = f"round {round_number} ({kind} reset, {moment}; replay: {replay})"
        reset_started = time.monotonic()
        try:
            outcome = _reset_at(moment, kind, device, client, board, rng)
            client.reconnect()
            after = device_info(client)
        except BaseException as exc:
            raise AssertionError(f"{where}: {type(exc).__name__}: {exc}") from exc
        ready_s = time.monotonic() - reset_started
        worst_s[kind] = max(worst_s.get(kind, 0.0), ready_s)
        assert after["boot_count"] == expected_boot_count(kind, info["boot_count"]), where
        assert after["reset_cause"] == EXPECTED_CAUSE[kind], where
        assert after["boot_id"] not in boot_ids, f"{where}: boot id {after['boot_id']} reused"
        boot_ids.add(after["boot_id"])
        for _ in range(2):
            data = rng.randbytes(rng.randrange(0, 300))
            assert client.call("rpc.echo", data) == data, where
        a, b = rng.randrange(-(2**40), 2**40), rng.randrange(-(2**40), 2**40)
        assert client.call("rpc.add", a, b) == a + b, where
        assert client.stats.stray_replies == 0, where
        counts[f"{kind:5} {moment:11} -> {outcome}"] += 1
        info = after
    elapsed = time.monotonic() - started
    print(f"{rounds} resets in {elapsed:.1f}s, every one recovered; by kind and moment:")
    for key in sorted(counts):
        print(f"  {counts[key]:5}  {key}")
    for kind in sorted(worst_s):
        print(f"  slowest reset to ready ({kind}): {worst_s[kind] * 1000:.0f} ms")
