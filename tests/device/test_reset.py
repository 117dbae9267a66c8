"""Resets: a pending call fails fast, a new session works, and the device says it rebooted."""

from __future__ import annotations

import threading
import time

import pytest

from harness.boards import Board
from harness.client import Client
from harness.errors import SessionTerminatedError
from harness.protocol import rpc
from harness.protocol.framing import encode_packet
from harness.protocol.session import MessageType, encode_message
from harness.targets.base import INBAND_RESET_KINDS, Target

from .helpers import EXPECTED_CAUSE, device_info, expected_boot_count


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
    after = device_info(client)
    assert after["boot_count"] == before["boot_count"] + 1
    assert after["boot_id"] != before["boot_id"]
    assert after["reset_cause"] == "software"
    assert client.call("rpc.add", 1, 2) == 3


def test_reset_when_idle(device: Target, client: Client, reset_kind: str) -> None:
    before = device_info(client)
    device.reset(reset_kind)
    client.reconnect()
    after = device_info(client)
    assert after["boot_count"] == expected_boot_count(reset_kind, before["boot_count"])
    assert after["boot_id"] != before["boot_id"]
    assert after["reset_cause"] == EXPECTED_CAUSE[reset_kind]
    assert client.call("rpc.echo", b"alive") == b"alive"


@pytest.mark.reset_kind("power")
def test_power_reset_during_a_call_fails_it_fast(
    device: Target, client: Client, board: Board
) -> None:
    outcome: list[BaseException | object] = []

    def sleeper() -> None:
        try:
            outcome.append(client.call("rpc.sleep_ms", 5000, timeout=board.timeouts.call))
        except BaseException as exc:  # the assertion below names what happened
            outcome.append(exc)

    before = device_info(client)
    caller = threading.Thread(target=sleeper)
    caller.start()
    # The console line the device prints as it starts sleeping is the ready signal.
    device.console.wait_for("sleep_ms: sleeping", board.timeouts.call)
    started = time.monotonic()
    device.reset("power")
    caller.join(board.timeouts.reset)
    assert not caller.is_alive(), "the pending call hung after the reset"
    assert isinstance(outcome[0], SessionTerminatedError), outcome
    assert time.monotonic() - started < board.timeouts.reset
    client.reconnect()
    assert device_info(client)["boot_count"] == expected_boot_count("power", before["boot_count"])


def test_many_resets_in_a_row(device: Target, client: Client, reset_kind: str) -> None:
    info = device_info(client)
    boot_ids = {info["boot_id"]}
    for _ in range(5):
        before = info["boot_count"]
        device.reset(reset_kind)
        client.reconnect()
        info = device_info(client)
        boot_ids.add(info["boot_id"])
        assert info["boot_count"] == expected_boot_count(reset_kind, before)
        assert info["reset_cause"] == EXPECTED_CAUSE[reset_kind]
    assert len(boot_ids) == 6, "every boot must have its own boot id"


def _physical_only(reset_kind: str) -> None:
    if reset_kind in INBAND_RESET_KINDS:
        pytest.skip(f"reset kind {reset_kind!r} needs a working session to be requested")


def test_reset_during_the_handshake(device: Target, client: Client, reset_kind: str) -> None:
    _physical_only(reset_kind)
    before = device_info(client)
    # A host that has just sent StartSessionInit when the device goes down.
    client.send_raw(client.session.start(0x5A))
    device.reset(reset_kind)
    client.reconnect()
    after = device_info(client)
    assert after["boot_count"] == expected_boot_count(reset_kind, before["boot_count"])
    assert after["boot_id"] != before["boot_id"]
    assert after["reset_cause"] == EXPECTED_CAUSE[reset_kind]


def test_reset_in_the_middle_of_a_request_frame(
    device: Target, client: Client, reset_kind: str
) -> None:
    _physical_only(reset_kind)
    before = device_info(client)
    assert client.session_id is not None
    request = encode_message(client.session_id, MessageType.NORMAL, rpc.encode_call(2, [7, 8]))
    wire = encode_packet(request)
    client.send_raw(wire[: len(wire) // 2])
    device.reset(reset_kind)
    client.send_raw(wire[len(wire) // 2 :])  # the rest reaches a freshly booted device
    client.reconnect()
    assert client.call("rpc.add", 7, 8) == 15
    after = device_info(client)
    assert after["boot_count"] == expected_boot_count(reset_kind, before["boot_count"])
    assert after["boot_id"] != before["boot_id"]
    assert after["reset_cause"] == EXPECTED_CAUSE[reset_kind]
    assert client.stats.stray_replies == 0, "no reply to the torn request may surface"
