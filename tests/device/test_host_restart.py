"""Host restarts: the host side goes away at some point of the protocol and a new host takes
over the line. The device must not reboot, the new host must open a session with its first
Init, and nothing the device sent to the old host may reach a call of the new one.

A host that dies leaves its traffic behind exactly as a killed process would: bytes it wrote
(a request, half a frame) are on the line, bytes the device sent back are unread.
"""

from __future__ import annotations

import time

from harness.boards import Board
from harness.client import Client
from harness.errors import CallTimeoutError
from harness.protocol import rpc
from harness.protocol.framing import encode_packet
from harness.protocol.session import MessageType, encode_message
from harness.targets.base import Target

from .helpers import device_info

ECHO_DATA = bytes(range(256)) * 3
# Built-in handles (docs/protocol.md 3.4), for requests made by hand.
ECHO_HANDLE = 1
ADD_HANDLE = 2
SLEEP_MS_HANDLE = 5


def _request_frame(client: Client, handle: int, args: list[object]) -> bytes:
    assert client.session_id is not None
    return encode_packet(
        encode_message(client.session_id, MessageType.NORMAL, rpc.encode_call(handle, args))
    )


def _new_host(device: Target) -> Client:
    """The restarted host: a client that knows nothing of the old one's session."""
    return Client.for_target(device)


def _assert_same_boot(before: dict[str, object], restarted: Client) -> None:
    after = device_info(restarted)
    assert after["boot_id"] == before["boot_id"], "a host restart must not reboot the device"
    assert after["boot_count"] == before["boot_count"]
    assert restarted.stats.init_sent == 1, "the device must answer the new host's first Init"
    assert restarted.stats.stray_replies == 0, "a reply meant for the old host surfaced"


def test_host_restart_while_the_device_runs_a_call(
    device: Target, client: Client, board: Board
) -> None:
    """The old host's reply arrives after the new host's Init: it must be dropped."""
    before = device_info(client)
    console_start = len(device.console)
    client.send_raw(_request_frame(client, SLEEP_MS_HANDLE, [500]))
    device.console.wait_for("sleep_ms: sleeping", board.timeouts.call, start=console_start)
    client.close()
    restarted = _new_host(device)
    restarted.handshake(board.timeouts.handshake + 0.5)
    assert restarted.call("rpc.add", 20, 22) == 42
    assert restarted.stats.ignored_messages >= 1, "the old session's reply was never seen"
    _assert_same_boot(before, restarted)


def test_host_restart_in_the_middle_of_a_request_frame(device: Target, client: Client) -> None:
    """The new host's first packet start ends the old host's half frame on the device."""
    before = device_info(client)
    wire = _request_frame(client, ADD_HANDLE, [1, 2])
    client.send_raw(wire[: len(wire) // 2])
    client.close()
    restarted = _new_host(device)
    restarted.handshake()
    assert restarted.call("rpc.echo", b"whole") == b"whole"
    _assert_same_boot(before, restarted)


def test_host_restart_in_the_middle_of_a_reply(
    device: Target, client: Client, board: Board
) -> None:
    """The old host read half of a reply; the new one starts with the other half.

    A pipe hands over the whole reply in one read, so the test reads all of it and gives the
    new host's session the second half first: the bytes it would find waiting on the line.
    """
    before = device_info(client)
    wire = _request_frame(client, ECHO_HANDLE, [ECHO_DATA])
    client.send_raw(wire)
    reply = b""
    deadline = time.monotonic() + board.timeouts.call
    while len(reply) < len(ECHO_DATA):
        if time.monotonic() > deadline:
            raise CallTimeoutError(f"only {len(reply)} bytes of the echo reply arrived")
        reply += device.transport.read(deadline - time.monotonic())
    client.close()
    restarted = _new_host(device)
    restarted.session.receive_data(reply[len(reply) // 2 :])
    restarted.handshake()
    assert restarted.call("rpc.echo", ECHO_DATA) == ECHO_DATA
    assert restarted.session.stats.framing.skipped_bytes > 0, "the reply's tail was not seen"
    _assert_same_boot(before, restarted)


def test_two_host_restarts_in_quick_succession(device: Target, client: Client) -> None:
    """A host that dies right after its Init leaves a StartSessionReply for a nonce the next
    host never sent; the next host must not take that session as its own."""
    before = device_info(client)
    client.close()
    short_lived = _new_host(device)
    short_lived.send_raw(short_lived.session.start(0x33))
    short_lived.close()
    restarted = _new_host(device)
    # A reply carries only the nonce it answers: a new host that drew the dead one's nonce
    # (1 in 255) could not tell the replies apart (docs/protocol.md). Rule that draw out.
    restarted._last_nonce = 0x33
    restarted.handshake()
    assert restarted.call("rpc.add", 5, 6) == 11
    _assert_same_boot(before, restarted)
