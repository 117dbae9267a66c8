"""MinRPC codec: layouts from docs/protocol.md 3, argument checks, and malformed packets."""

from __future__ import annotations

import contextlib
import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.errors import ProtocolError
from harness.protocol import rpc
from harness.protocol.rpc import (
    CallFunc,
    FunctionHandle,
    GetGlobalFunc,
    RemoteException,
    Return,
    decode_reply,
    decode_request,
    encode_call,
    encode_exception,
    encode_get_global_func,
    encode_return,
)


def packet(code: int, body: bytes, nbytes: int | None = None) -> bytes:
    return struct.pack("<Qi", 4 + len(body) if nbytes is None else nbytes, code) + body


def args(*items: tuple[int, bytes]) -> bytes:
    """An argument list from (type code, value bytes) pairs."""
    codes = struct.pack(f"<i{len(items)}i", len(items), *(code for code, _ in items))
    return codes + b"".join(value for _, value in items)


def str_value(text: bytes) -> bytes:
    return struct.pack("<Q", len(text)) + text


# --- encoding ------------------------------------------------------------------------------------


def test_get_global_func_spec_example() -> None:
    assert encode_get_global_func("rpc.add") == bytes.fromhex(
        "1b0000000000000009000000010000000b00000007000000000000007270632e616464"
    )


def test_call_layout() -> None:
    wire = encode_call(2, [1, 2.5, None, "é", b"\xff", bytearray(b"a"), memoryview(b"b")])
    expected = packet(
        3,
        struct.pack("<Q", 2)
        + args(
            (0, struct.pack("<q", 1)),
            (2, struct.pack("<d", 2.5)),
            (4, b""),
            (11, str_value("é".encode())),
            (12, str_value(b"\xff")),
            (12, str_value(b"a")),
            (12, str_value(b"b")),
        ),
    )
    assert wire == expected


def test_call_without_arguments() -> None:
    assert encode_call(7, []) == packet(3, struct.pack("<Qi", 7, 0))


def test_int_range_is_checked() -> None:
    encode_call(1, [-(2**63), 2**63 - 1])
    with pytest.raises(ValueError, match=r"argument 1: int 9223372036854775808"):
        encode_call(1, [0, 2**63])
    with pytest.raises(ValueError, match="argument 0"):
        encode_call(1, [-(2**63) - 1])


def test_bool_is_rejected_with_a_clear_error() -> None:
    with pytest.raises(TypeError, match=r"argument 1: bool .* int\(True\)"):
        encode_call(1, [0, True])


@pytest.mark.parametrize("value", [[1], {"a": 1}, object(), 1j, FunctionHandle(3)])
def test_unsupported_argument_types(value: object) -> None:
    with pytest.raises(TypeError, match="argument 0"):
        encode_call(1, [value])


@pytest.mark.parametrize("handle", [-1, 2**64, True, "1"])
def test_bad_handles(handle: object) -> None:
    with pytest.raises((TypeError, ValueError), match="handle"):
        encode_call(handle, [])  # type: ignore[arg-type]


def test_function_handle_is_accepted_as_call_handle() -> None:
    assert encode_call(FunctionHandle(5), []) == encode_call(5, [])


def test_return_of_handle_and_exception_layout() -> None:
    assert encode_return(FunctionHandle(2)) == bytes.fromhex(
        "140000000000000004000000010000000a0000000200000000000000"
    )
    assert encode_exception("no") == packet(5, args((11, str_value(b"no"))))


def test_max_echo_payload() -> None:
    assert rpc.max_echo_payload(2048) == 2009
    # The request for rpc.echo of that many bytes fills the frame payload exactly; its reply
    # is 8 bytes smaller (no handle).
    request = encode_call(1, [bytes(2009)])
    assert rpc.SESSION_HEADER_SIZE + len(request) == 2048
    reply = encode_return(bytes(2009))
    assert rpc.SESSION_HEADER_SIZE + len(reply) + 8 == 2048


# --- decoding replies --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [0, -1, 2**63 - 1, -(2**63), 1.5, -0.0, math.inf, None, "", "ü", b"", b"\x00\xff"]
)
def test_return_roundtrip(value: rpc.Value) -> None:
    decoded = decode_reply(encode_return(value))
    assert isinstance(decoded, Return)
    assert rpc.values_equal(decoded.value, value)


def test_nan_roundtrip() -> None:
    decoded = decode_reply(encode_return(math.nan))
    assert isinstance(decoded, Return)
    assert isinstance(decoded.value, float) and math.isnan(decoded.value)


def test_handle_return_is_a_function_handle() -> None:
    decoded = decode_reply(encode_return(FunctionHandle(9)))
    assert isinstance(decoded, Return)
    assert type(decoded.value) is FunctionHandle and decoded.value == 9
    assert repr(decoded.value) == "FunctionHandle(9)"


def test_exception_roundtrip() -> None:
    assert decode_reply(encode_exception("no such function: x")) == RemoteException(
        "no such function: x"
    )


MALFORMED_REPLIES = {
    "empty": (b"", "nbytes"),
    "short header": (b"\x02\x00\x00\x00\x00\x00\x00\x00\x04\x00", "code needs 4 bytes"),
    "nbytes too large": (packet(4, args((4, b"")), nbytes=13), "nbytes is 13"),
    "nbytes too small": (packet(4, args((4, b"")), nbytes=11), "nbytes is 11"),
    "request code": (packet(3, args((4, b""))), "code 3"),
    "no argument count": (packet(4, b""), "argument count"),
    "negative count": (packet(4, struct.pack("<i", -1)), "negative"),
    "huge count": (packet(4, struct.pack("<i", 2**31 - 1)), "2147483647 arguments"),
    "two values": (packet(4, args((4, b""), (4, b""))), "2 values"),
    "no values": (packet(4, args()), "0 values"),
    "unknown type": (packet(4, args((7, b""))), "unknown type code 7"),
    "truncated int": (packet(4, args((0, b"\x01\x02"))), "int value 0"),
    "truncated str length": (packet(4, args((11, b"\x01"))), "str length 0"),
    "str past end": (packet(4, args((11, struct.pack("<Q", 5) + b"ab"))), "str value 0"),
    "huge bytes": (packet(4, args((12, struct.pack("<Q", 2**64 - 1)))), "bytes value 0"),
    "bad utf-8": (packet(4, args((11, str_value(b"\xff")))), "UTF-8"),
    "trailing": (packet(4, args((4, b"")) + b"\x00"), "trailing"),
    "exception not str": (packet(5, args((0, bytes(8)))), "not str"),
}


@pytest.mark.parametrize("name", list(MALFORMED_REPLIES))
def test_malformed_reply(name: str) -> None:
    data, problem = MALFORMED_REPLIES[name]
    with pytest.raises(ProtocolError, match="malformed RPC reply") as info:
        decode_reply(data)
    assert problem in str(info.value)


# --- decoding requests ---------------------------------------------------------------------------


def test_request_roundtrip() -> None:
    assert decode_request(encode_get_global_func("rpc.echo")) == GetGlobalFunc("rpc.echo")
    assert decode_request(encode_call(4, [1, "a", b"b", None, 0.5])) == CallFunc(
        4, (1, "a", b"b", None, 0.5)
    )


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (packet(9, args()), "0 values"),
        (packet(9, args((0, bytes(8)))), "not str"),
        (packet(3, b"\x01\x00"), "handle"),
        (packet(3, struct.pack("<Q", 1) + args((10, bytes(8)))), "handle value"),
        (packet(4, args((4, b""))), "code 4"),
        (packet(-1, b""), "code -1"),
    ],
)
def test_malformed_request(data: bytes, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem):
        decode_request(data)


values = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.none(),
    st.text(max_size=20),
    st.binary(max_size=20),
)


@given(handle=st.integers(0, 2**64 - 1), arguments=st.lists(values, max_size=6))
def test_call_roundtrip(handle: int, arguments: list[rpc.Value]) -> None:
    decoded = decode_request(encode_call(handle, arguments))
    assert isinstance(decoded, CallFunc)
    assert decoded.handle == handle
    assert all(rpc.values_equal(a, b) for a, b in zip(decoded.args, arguments, strict=True))


@given(st.binary(max_size=64))
def test_decoders_never_crash_on_garbage(data: bytes) -> None:
    for decode in (decode_reply, decode_request):
        with contextlib.suppress(ProtocolError):
            decode(data)


@given(value=values, cut=st.integers(0, 200))
def test_truncated_reply_is_protocol_error(value: rpc.Value, cut: int) -> None:
    data = encode_return(value)
    if cut < len(data):
        with pytest.raises(ProtocolError):
            decode_reply(data[:cut])
