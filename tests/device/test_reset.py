"""Resets of every kind at every point of the protocol (docs/reset-semantics.md).

Each test runs once per reset kind the board supports (``reset_kind``) and checks the same
guarantees: a call in flight fails with SessionTerminatedError within the board's reset
deadline, never hangs and never returns a stale reply; a new session opens; and the device
reports the boot count, a new boot id and the reset cause the kind implies.

Physical kinds (hard, power) are carried out by the harness at a point the device announces
on its console (the ready signal). In-band kinds (rpc, fatal) are carried out by the device
itself, armed through its fault functions (zephyr_app/faults/fault_functions.h) so that they
land at the same points: ``app.reset_after_ms`` while a function runs, ``app.torn_reply`` in
the middle of a reply frame.
"""

from __future__ import annotations

import time

import pytest

from harness.boards import Board
from harness.client import Client
from harness.errors import SessionTerminatedError
from harness.protocol import rpc
from harness.protocol.framing import encode_packet
from harness.protocol.session import MessageType, encode_message
from harness.targets.base import Target

from .helpers import (
    RESET_CONSOLE_LINE,
    PendingCall,
    assert_rebooted,
    device_info,
    is_inband,
    wait_for_in_order,
)

SLEEP_MS = 5000  # far longer than any board's reset deadline: a reply would come too late
# Reply data with bytes the framing must escape, so the cut can land inside an escape.
TORN_DATA = bytes(range(256))[::-1] * 2


@pytest.mark.reset_kind("rpc")
def test_rpc_reset_fails_the_pending_call_within_the_deadline(client: Client, board: Board) -> None:
    before = device_info(client)
    started = time.monotonic()
    with pytest.raises(SessionTerminatedError):
        client.call("rpc.reset", timeout=board.timeouts.reset)
    assert time.monotonic() - started < board.timeouts.reset
    with pytest.raises(SessionTerminatedError, match="reconnect"):
        client.call("rpc.add", 1, 2)  # a reset is never papered over
    client.reconnect()
    assert_rebooted(before, device_info(client), "rpc")
    assert client.call("rpc.add", 1, 2) == 3


def test_reset_when_idle(device: Target, client: Client, reset_kind: str) -> None:
    before = device_info(client)
    device.reset(reset_kind)
    client.reconnect()
    assert_rebooted(before, device_info(client), reset_kind)
    assert client.call("rpc.echo", b"alive") == b"alive"


def test_reset_during_a_call(device: Target, client: Client, board: Board, reset_kind: str) -> None:
    """A reset with no synchronisation with the call: the device may be receiving the request,
    running it or sending the reply. Either the call fails with SessionTerminatedError, or it
    returns the right value and the reset is reported by the next call; never anything else."""
    before = device_info(client)
    payload = bytes(range(256)) * 4
    if is_inband(reset_kind):
        client.call("app.reset_after_ms", 2, reset_kind)
    pending = PendingCall(client, "rpc.echo", payload, timeout=board.timeouts.call)
    if not is_inband(reset_kind):
        device.reset(reset_kind)
    outcome = pending.result(board.timeouts.reset)
    if outcome == payload:  # the reply beat the reset; the reset must still be reported
        client.await_boot(board.timeouts.reset)
        with pytest.raises(SessionTerminatedError):
            client.call("rpc.add", 1, 1)
    else:
        assert isinstance(outcome, SessionTerminatedError), outcome
    client.reconnect()
    assert_rebooted(before, device_info(client), reset_kind)
    assert client.stats.stray_replies == 0


def test_reset_between_a_request_and_its_reply(
    device: Target, client: Client, board: Board, reset_kind: str
) -> None:
    """The device is running the call (rpc.sleep_ms) when it resets."""
    before = device_info(client)
    console_start = len(device.console)
    started = time.monotonic()
    if is_inband(reset_kind):
        client.call("app.reset_after_ms", 300, reset_kind)
        with pytest.raises(SessionTerminatedError):
            client.call("rpc.sleep_ms", SLEEP_MS, timeout=board.timeouts.call)
    else:
        pending = PendingCall(client, "rpc.sleep_ms", SLEEP_MS, timeout=board.timeouts.call)
        # The console line the device prints as it starts sleeping is the ready signal.
        device.console.wait_for("sleep_ms: sleeping", board.timeouts.call, start=console_start)
        started = time.monotonic()
        device.reset(reset_kind)
        outcome = pending.result(board.timeouts.reset)
        assert isinstance(outcome, SessionTerminatedError), outcome
    elapsed = time.monotonic() - started
    assert elapsed < min(board.timeouts.reset, SLEEP_MS / 1000), f"took {elapsed:.3f}s"
    # The reset landed while the function ran, not before it started.
    wait_for_in_order(
        device,
        "sleep_ms: sleeping",
        RESET_CONSOLE_LINE[reset_kind],
        board.timeouts.reset,
        console_start,
    )
    client.reconnect()
    assert_rebooted(before, device_info(client), reset_kind)
    assert client.stats.stray_replies == 0


def test_reset_in_the_middle_of_a_reply(
    device: Target, client: Client, board: Board, reset_kind: str
) -> None:
    """The device has sent part of a reply frame when it resets: the torn frame is dropped
    (counted as interrupted by the wake-up's packet start) and the call fails."""
    before = device_info(client)
    interrupted = client.session.stats.framing.interrupted
    cut = len(TORN_DATA) // 2
    if is_inband(reset_kind):
        with pytest.raises(SessionTerminatedError):
            client.call("app.torn_reply", TORN_DATA, cut, reset_kind, timeout=board.timeouts.reset)
    else:
        console_start = len(device.console)
        pending = PendingCall(
            client, "app.torn_reply", TORN_DATA, cut, "hang", timeout=board.timeouts.call
        )
        device.console.wait_for("torn reply: hanging", board.timeouts.call, start=console_start)
        device.reset(reset_kind)
        outcome = pending.result(board.timeouts.reset)
        assert isinstance(outcome, SessionTerminatedError), outcome
    # The torn frame is cut off by the wake-up's packet start. A power reset gives the device
    # a new line (pipe, socket), and what the host had not read from the old one is gone with
    # it, as with a USB-serial adapter powered by the board; so there it may never arrive.
    torn_frames_seen = client.session.stats.framing.interrupted - interrupted
    assert torn_frames_seen == 1 or (reset_kind == "power" and torn_frames_seen == 0), (
        f"{torn_frames_seen} interrupted frames: the torn reply should be cut off by the wake-up"
    )
    client.reconnect()
    assert_rebooted(before, device_info(client), reset_kind)
    assert client.call("rpc.echo", TORN_DATA) == TORN_DATA
    assert client.stats.stray_replies == 0


def test_reset_during_the_handshake(
    device: Target, client: Client, board: Board, reset_kind: str
) -> None:
    before = device_info(client)
    if is_inband(reset_kind):
        # The device answers an Init at once, so the reset races the handshake: it lands
        # before, during or after the StartSessionReply, and the client must cope with each.
        terminations = client.stats.terminations
        client.call("app.reset_after_ms", 0, reset_kind)
        client.handshake()
        if client.stats.terminations == terminations:  # it landed after the new session
            client.await_boot(board.timeouts.reset)
            with pytest.raises(SessionTerminatedError):
                client.call("rpc.add", 1, 1)
            client.reconnect()
        after = device_info(client)
    else:
        # A host that has just sent StartSessionInit when the device goes down.
        client.send_raw(client.session.start(0x5A))
        device.reset(reset_kind)
        client.reconnect()
        after = device_info(client)
    assert_rebooted(before, after, reset_kind)
    assert client.call("rpc.add", 4, 5) == 9


def test_reset_in_the_middle_of_a_request_frame(
    device: Target, client: Client, board: Board, reset_kind: str
) -> None:
    """Half a request, the reset, then the other half reaches a freshly booted device, which
    must neither answer it nor need more than a handshake to serve the next call."""
    before = device_info(client)
    assert client.session_id is not None
    request = encode_message(client.session_id, MessageType.NORMAL, rpc.encode_call(2, [7, 8]))
    wire = encode_packet(request)
    if is_inband(reset_kind):
        client.call("app.reset_after_ms", 200, reset_kind)
        client.send_raw(wire[: len(wire) // 2])
        client.await_boot(board.timeouts.reset)
    else:
        client.send_raw(wire[: len(wire) // 2])
        device.reset(reset_kind)
    client.send_raw(wire[len(wire) // 2 :])
    client.reconnect()
    assert client.call("rpc.add", 7, 8) == 15
    assert_rebooted(before, device_info(client), reset_kind)
    assert client.stats.stray_replies == 0, "no reply to the torn request may surface"


def test_two_resets_in_quick_succession(
    device: Target, client: Client, board: Board, reset_kind: str
) -> None:
    """The second reset comes as soon as the first boot is up: before any session (physical
    kinds) or as the first request of the new session (in-band kinds, which need one)."""
    before = device_info(client)
    device.reset(reset_kind)
    if is_inband(reset_kind):
        client.reconnect()
    else:
        client.await_boot(board.timeouts.reset)  # the first boot has counted itself
    device.reset(reset_kind)
    client.reconnect()
    assert_rebooted(before, device_info(client), reset_kind, resets=2)
    assert client.call("rpc.add", 2, 2) == 4


def test_back_to_back_resets_before_the_first_boot_is_up(
    device: Target, client: Client, board: Board, reset_kind: str
) -> None:
    """Two physical resets with nothing in between: the second may land before the first
    boot counted itself, so one or two boots are counted; either way the device comes up."""
    if is_inband(reset_kind):
        pytest.skip(f"an in-band {reset_kind!r} reset needs a session, so it cannot overlap a boot")
    before = device_info(client)
    device.reset(reset_kind)
    device.reset(reset_kind)
    client.reconnect()
    after = device_info(client)
    assert after["boot_id"] != before["boot_id"]
    assert after["reset_cause"] == ("power-on" if reset_kind == "power" else "reset-pin")
    if reset_kind != "power":
        assert after["boot_count"] in (before["boot_count"] + 1, before["boot_count"] + 2)
    assert client.call("rpc.add", 3, 3) == 6


def test_many_resets_in_a_row(device: Target, client: Client, reset_kind: str) -> None:
    info = device_info(client)
    boot_ids = {info["boot_id"]}
    for _ in range(5):
        before = info
        device.reset(reset_kind)
        client.reconnect()
        info = device_info(client)
        assert_rebooted(before, info, reset_kind)
        boot_ids.add(info["boot_id"])
    assert len(boot_ids) == 6, "every boot must have its own boot id"
