"""Handshake: fresh, repeated, after a host restart, and with stale traffic on the line."""

from __future__ import annotations

from harness.client import Client
from harness.protocol import rpc
from harness.protocol.framing import encode_packet
from harness.protocol.session import MessageType, encode_message
from harness.targets.base import Target

from .helpers import device_info


def test_fresh_handshake_gives_a_well_formed_session_id(client: Client) -> None:
    session_id = client.session_id
    assert session_id is not None
    assert session_id & 0xFF != 0, "initiator nonce must not be 0"
    assert session_id >> 8 != 0, "responder nonce must not be 0"
    assert client.stats.init_sent == 1, "a fresh device must answer the first Init"
    assert client.call("rpc.add", 2, 3) == 5


def test_boot_announces_itself_with_a_log_line(client: Client) -> None:
    assert any("boot" in line for line in client.logs), client.logs


def test_console_shows_the_boot_line(device: Target, client: Client, board) -> None:
    device.console.expect(rf"boot: firmware \S+ board {board.name} reset-cause power-on")
    # The console is a separate stream: it may lag the RPC reply by a few milliseconds.
    device.console.expect("session established", timeout=board.timeouts.handshake)


def test_repeated_handshakes_each_open_a_new_working_session(client: Client) -> None:
    boot_id = device_info(client)["boot_id"]
    seen = {client.session_id}
    for round_number in range(5):
        session_id = client.handshake()
        assert session_id not in seen, f"round {round_number}: session id {session_id:#06x} reused"
        seen.add(session_id)
        assert client.call("rpc.add", round_number, 1) == round_number + 1
    assert device_info(client)["boot_id"] == boot_id, "a handshake must not reboot the device"


def test_host_restart_against_running_device(device: Target, client: Client) -> None:
    before = device_info(client)
    client.close()  # the old host process is gone; a new one knows nothing of its session
    restarted = Client.for_target(device)
    restarted.handshake()
    after = device_info(restarted)
    assert after["boot_id"] == before["boot_id"], "the device must not reboot for a new host"
    assert after["boot_count"] == before["boot_count"]
    assert restarted.session_id != client.session.session_id


def test_stale_session_traffic_is_ignored(device: Target, client: Client) -> None:
    stale_id = client.session_id
    assert stale_id is not None
    add_handle = 2  # docs/protocol.md 3.4: rpc.add is the second built-in
    client.handshake()
    assert client.session_id != stale_id
    # A request in the dead session: if the device answered it, the reply would either be
    # taken as the answer to the next call (wrong value) or counted as a stray reply.
    stale_request = encode_message(
        stale_id, MessageType.NORMAL, rpc.encode_call(add_handle, [100, 100])
    )
    client.send_raw(encode_packet(stale_request))
    assert client.call("rpc.add", 1, 2) == 3
    assert client.call("rpc.echo", b"after") == b"after"
    assert client.stats.stray_replies == 0


def test_text_noise_before_the_first_packet_is_ignored(device: Target, board) -> None:
    noise = b"*** Booting Zephyr OS ***\r\nuart: ready \xfe\xfd\xff\xff garbage\r\n" * 4
    connection = Client.for_target(device)
    connection.send_raw(noise)
    connection.handshake(board.timeouts.boot + board.timeouts.handshake)
    assert connection.call("rpc.echo", b"\xff\xfd\xfe") == b"\xff\xfd\xfe"


def test_corrupt_frame_then_good_frame_serves_the_good_one(client: Client) -> None:
    assert client.session_id is not None
    request = encode_message(client.session_id, MessageType.NORMAL, rpc.encode_call(2, [40, 2]))
    corrupt = bytearray(encode_packet(request))
    corrupt[-1] ^= 0x5A  # break the CRC
    client.send_raw(bytes(corrupt))
    assert client.call("rpc.add", 20, 22) == 42
    truncated = encode_packet(request)[: len(request) // 2]
    client.send_raw(truncated)  # a half frame: the next packet start must interrupt it
    assert client.call("rpc.echo", b"served") == b"served"
    assert client.stats.stray_replies == 0
