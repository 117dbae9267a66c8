"""Every built-in function, payload sizes from 0 to the maximum, and every error path."""

from __future__ import annotations

import time

import pytest

from harness.boards import Board
from harness.client import Client, UnknownFunctionError
from harness.errors import CallTimeoutError, FramingError, RemoteError, SessionStateError
from harness.protocol.crc import crc16
from harness.protocol.rpc import max_echo_payload

from .helpers import device_info


def _payload(size: int) -> bytes:
    # Every byte value, escape bytes included, so framing is exercised at every size.
    return bytes((i * 7 + 0xFD) & 0xFF for i in range(size))


@pytest.mark.parametrize("size", [0, 1, 2, 254, 255, 256, 1000, "max"])
def test_echo_every_size_up_to_the_maximum(client: Client, board: Board, size) -> None:
    limit = max_echo_payload(board.max_packet)
    size = limit if size == "max" else size
    data = _payload(size)
    assert client.call("rpc.echo", data) == data


def test_echo_of_only_escape_bytes(client: Client, board: Board) -> None:
    data = b"\xff" * max_echo_payload(board.max_packet)
    assert client.call("rpc.echo", data) == data


def test_echo_over_the_maximum_is_refused_before_sending(client: Client, board: Board) -> None:
    too_big = _payload(max_echo_payload(board.max_packet) + 1)
    with pytest.raises(FramingError, match="max"):
        client.call("rpc.echo", too_big)
    assert client.call("rpc.echo", b"still fine") == b"still fine"


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [(2, 3, 5), (-7, 3, -4), (0, 0, 0), (2**63 - 1, 1, -(2**63)), (-(2**63), -1, 2**63 - 1)],
)
def test_add_wraps_like_int64(client: Client, a: int, b: int, expected: int) -> None:
    assert client.call("rpc.add", a, b) == expected


def test_info_reports_the_documented_fields(client: Client, board: Board) -> None:
    info = device_info(client)
    assert set(info) >= {
        "firmware_version",
        "board",
        "boot_count",
        "boot_id",
        "uptime_ms",
        "max_payload",
        "max_packet",
        "reset_cause",
    }
    assert info["board"] == board.name
    assert info["boot_count"] == 1
    assert info["max_packet"] == board.max_packet
    assert info["max_payload"] == max_echo_payload(board.max_packet)
    assert int(info["boot_id"], 16) != 0
    assert info["reset_cause"] == "power-on"


def test_log_arrives_as_a_log_message_before_the_reply(client: Client) -> None:
    assert client.call("rpc.log", "hello from the test") is None
    assert client.logs[-1] == "hello from the test"
    assert client.call("rpc.log", "") is None
    assert client.logs[-1] == ""


def test_sleep_blocks_the_device_for_at_least_that_long(client: Client) -> None:
    started = time.monotonic()
    assert client.call("rpc.sleep_ms", 150) is None
    assert time.monotonic() - started >= 0.150
    assert client.call("rpc.add", 1, 1) == 2


def test_sleep_out_of_range_is_a_remote_error(client: Client) -> None:
    with pytest.raises(RemoteError):
        client.call("rpc.sleep_ms", -1)


@pytest.mark.parametrize("data", [b"", b"123456789", bytes(range(256)) * 4])
def test_crc16_matches_the_host(client: Client, data: bytes) -> None:
    assert client.call("rpc.crc16", data) == crc16(data)


def test_fail_raises_with_the_device_message(client: Client) -> None:
    with pytest.raises(RemoteError) as caught:
        client.call("rpc.fail", "it broke: \u00e9")
    assert caught.value.remote_message == "it broke: \u00e9"
    assert caught.value.function == "rpc.fail"
    assert client.call("rpc.add", 1, 2) == 3, "an exception must not break the session"


def test_unknown_function(client: Client) -> None:
    with pytest.raises(UnknownFunctionError, match=r"no_such\.function"):
        client.call("no_such.function")
    assert client.call("rpc.add", 1, 2) == 3


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("rpc.echo", (1,)),
        ("rpc.echo", ()),
        ("rpc.echo", (b"a", b"b")),
        ("rpc.add", ("a", 1)),
        ("rpc.add", (1,)),
        ("rpc.add", (1.5, 2)),
        ("rpc.crc16", (None,)),
        ("rpc.log", (b"bytes, not str",)),
        ("rpc.info", (1,)),
    ],
)
def test_wrong_arguments_are_remote_errors(client: Client, name: str, args: tuple) -> None:
    with pytest.raises(RemoteError) as caught:
        client.call(name, *args)
    assert caught.value.remote_message, "the message must say what was wrong"
    assert client.call("rpc.echo", b"ok") == b"ok"


def test_call_timeout_then_reconnect_never_delivers_the_late_reply(client: Client) -> None:
    with pytest.raises(CallTimeoutError, match=r"reply to rpc\.sleep_ms"):
        client.call("rpc.sleep_ms", 600, timeout=0.2)
    with pytest.raises(SessionStateError, match="timed out"):
        client.call("rpc.add", 1, 2)
    # The device answers the sleep in the old session once it wakes; that reply must be
    # dropped by session id, never taken as the answer to the calls below.
    client.reconnect()
    assert client.call("rpc.echo", b"fresh") == b"fresh"
    assert client.call("rpc.add", 4, 5) == 9
    assert client.stats.ignored_messages >= 1, "the late reply should have been seen and ignored"
