"""The MinRPC subset codec: RPC packets to and from Python values (docs/protocol.md 3).

Both directions are here, requests and replies, because the shared vectors and the fuzz tests
need to play either side; the client only uses ``encode_*`` for requests and ``decode_reply``.
Decoding is strict: every length is checked against the bytes actually present before anything
is read or allocated, and any deviation is a :class:`~harness.errors.ProtocolError` that says
what was wrong and where, since a malformed reply usually means a firmware bug worth reading
about in the test report.
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from harness.errors import ProtocolError

SESSION_HEADER_SIZE = 3
"""u16 session id + u8 type, in front of every RPC packet."""
RPC_HEADER_SIZE = 12
"""u64 nbytes + i32 code."""
ECHO_REPLY_OVERHEAD = SESSION_HEADER_SIZE + RPC_HEADER_SIZE + 4 + 4 + 8
"""Frame payload bytes of a Return(bytes) beyond the bytes themselves: header, RPC header,
argument count, one type code, bytes length (docs/protocol.md 3.4)."""
ECHO_REQUEST_OVERHEAD = ECHO_REPLY_OVERHEAD + 8
"""Frame payload bytes of CallFunc(h, bytes) beyond the bytes: the reply's plus the u64 handle."""

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1


def max_echo_payload(max_packet: int) -> int:
    """The largest ``rpc.echo`` argument whose request fits a ``max_packet``-byte frame payload.

    The request is the larger of the two messages (it also carries the u64 handle), so it sets
    the limit: ``max_packet - 39`` (docs/protocol.md 3.4). A larger request would be dropped by
    the device as ``too_long``, never answered.
    """
    return max_packet - ECHO_REQUEST_OVERHEAD


class RpcCode(enum.IntEnum):
    """The ``i32 code`` of an RPC packet."""

    CALL_FUNC = 3
    RETURN = 4
    EXCEPTION = 5
    GET_GLOBAL_FUNC = 9


class TypeCode(enum.IntEnum):
    """Type code of one value in an argument list."""

    INT = 0
    FLOAT = 2
    NULL = 4
    HANDLE = 10
    STR = 11
    BYTES = 12


class FunctionHandle(int):
    """A function handle returned by GetGlobalFunc.

    An ``int`` subclass so it can be passed straight to :func:`encode_call`, while still telling
    a handle apart from an ``int`` return value (which has another type code on the wire).
    """

    def __repr__(self) -> str:
        return f"FunctionHandle({int(self)})"


Value = int | float | str | bytes | FunctionHandle | None
"""What a decoded value can be."""


@dataclass(frozen=True)
class Return:
    """A Return reply: the function's value (``None`` for a null)."""

    value: Value


@dataclass(frozen=True)
class RemoteException:
    """An Exception reply: the device's message."""

    message: str


@dataclass(frozen=True)
class GetGlobalFunc:
    """A GetGlobalFunc request."""

    name: str


@dataclass(frozen=True)
class CallFunc:
    """A CallFunc request."""

    handle: int
    args: tuple[Value, ...]


# --- encoding -------------------------------------------------------------------------------


def _packet(code: RpcCode, body: bytes) -> bytes:
    return struct.pack("<Qi", 4 + len(body), code) + body


def _encode_value(value: object, index: int, *, allow_handle: bool) -> tuple[int, bytes]:
    """Type code and encoding of one value; ``index`` names the argument in errors."""
    if isinstance(value, FunctionHandle):
        if not allow_handle:
            raise TypeError(
                f"argument {index}: a FunctionHandle cannot be passed as an argument "
                "(handles only travel in the Return of GetGlobalFunc); pass int(handle)"
            )
        if not 0 <= value <= UINT64_MAX:
            raise ValueError(f"argument {index}: handle {int(value)} does not fit in u64")
        return TypeCode.HANDLE, struct.pack("<Q", value)
    if isinstance(value, bool):
        raise TypeError(
            f"argument {index}: bool is not an RPC type (the wire has no bool); "
            f"pass int({value}) if an integer is meant"
        )
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"argument {index}: int {value} does not fit in a signed 64-bit int")
        return TypeCode.INT, struct.pack("<q", value)
    if isinstance(value, float):
        return TypeCode.FLOAT, struct.pack("<d", value)
    if value is None:
        return TypeCode.NULL, b""
    if isinstance(value, str):
        data = value.encode("utf-8")
        return TypeCode.STR, struct.pack("<Q", len(data)) + data
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return TypeCode.BYTES, struct.pack("<Q", len(data)) + data
    raise TypeError(
        f"argument {index}: {type(value).__name__} is not an RPC type "
        "(use int, float, None, str or bytes)"
    )


def _encode_args(values: Sequence[object], *, allow_handle: bool = False) -> bytes:
    encoded = [_encode_value(v, i, allow_handle=allow_handle) for i, v in enumerate(values)]
    codes = struct.pack(f"<i{len(encoded)}i", len(encoded), *(code for code, _ in encoded))
    return codes + b"".join(data for _, data in encoded)


def encode_get_global_func(name: str) -> bytes:
    """The RPC packet that looks up the function ``name``."""
    if not isinstance(name, str):
        raise TypeError(f"function name must be a str, not {type(name).__name__}")
    return _packet(RpcCode.GET_GLOBAL_FUNC, _encode_args([name]))


def encode_call(handle: int, args: Sequence[object]) -> bytes:
    """The RPC packet that calls the function ``handle`` with ``args``.

    Python values map to wire types as int -> int (i64), float -> float, None -> null,
    str -> str, bytes-like -> bytes. A bool is rejected rather than silently sent as 0/1.
    """
    if isinstance(handle, bool) or not isinstance(handle, int):
        raise TypeError(f"handle must be an int, not {type(handle).__name__}")
    if not 0 <= handle <= UINT64_MAX:
        raise ValueError(f"handle {handle} does not fit in u64")
    return _packet(RpcCode.CALL_FUNC, struct.pack("<Q", handle) + _encode_args(args))


def encode_return(value: object) -> bytes:
    """The RPC packet of a Return carrying ``value`` (a FunctionHandle is sent as a handle)."""
    return _packet(RpcCode.RETURN, _encode_args([value], allow_handle=True))


def encode_exception(message: str) -> bytes:
    """The RPC packet of an Exception carrying ``message``."""
    return _packet(RpcCode.EXCEPTION, _encode_args([message]))


# --- decoding ---------------------------------------------------------------------------------


class _Reader:
    """Bounds-checked little-endian reads; every failure names the field and the offset."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.offset = 0
        self.what = what

    def take(self, size: int, field: str) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise ProtocolError(
                f"malformed {self.what}: {field} needs {size} bytes at offset {self.offset} "
                f"but only {len(self.data) - self.offset} remain (packet of {len(self.data)} "
                f"bytes: {self.data[:64].hex(' ')})"
            )
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def unpack(self, fmt: str, field: str) -> int | float:
        value: int | float = struct.unpack(fmt, self.take(struct.calcsize(fmt), field))[0]
        return value

    def end(self) -> None:
        if self.offset != len(self.data):
            raise ProtocolError(
                f"malformed {self.what}: {len(self.data) - self.offset} unexpected trailing "
                f"bytes at offset {self.offset}"
            )

    def fail(self, problem: str) -> ProtocolError:
        return ProtocolError(f"malformed {self.what}: {problem}")


def _read_header(packet: bytes, what: str) -> tuple[_Reader, int]:
    reader = _Reader(bytes(packet), what)
    nbytes = int(reader.unpack("<Q", "nbytes"))
    if nbytes != len(packet) - 8:
        raise reader.fail(f"nbytes is {nbytes} but {len(packet) - 8} bytes follow it")
    code = int(reader.unpack("<i", "code"))
    return reader, code


def _read_args(reader: _Reader) -> tuple[Value, ...]:
    count = int(reader.unpack("<i", "argument count"))
    if count < 0:
        raise reader.fail(f"negative argument count {count}")
    remaining = len(reader.data) - reader.offset
    if count * 4 > remaining:
        raise reader.fail(f"{count} arguments announced but only {remaining} bytes remain")
    codes = [int(reader.unpack("<i", f"type code {i}")) for i in range(count)]
    return tuple(_read_value(reader, code, i) for i, code in enumerate(codes))


def _read_value(reader: _Reader, code: int, index: int) -> Value:
    if code == TypeCode.INT:
        return int(reader.unpack("<q", f"int value {index}"))
    if code == TypeCode.FLOAT:
        return float(reader.unpack("<d", f"float value {index}"))
    if code == TypeCode.NULL:
        return None
    if code == TypeCode.HANDLE:
        return FunctionHandle(int(reader.unpack("<Q", f"handle value {index}")))
    if code in (TypeCode.STR, TypeCode.BYTES):
        kind = "str" if code == TypeCode.STR else "bytes"
        size = int(reader.unpack("<Q", f"{kind} length {index}"))
        data = reader.take(size, f"{kind} value {index}")
        if code == TypeCode.BYTES:
            return data
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise reader.fail(f"str value {index} is not valid UTF-8 ({exc})") from None
    raise reader.fail(f"unknown type code {code} for value {index}")


def _single(reader: _Reader, args: tuple[Value, ...], name: str) -> Value:
    if len(args) != 1:
        raise reader.fail(f"{name} carries {len(args)} values, expected exactly 1")
    return args[0]


def decode_reply(packet: bytes) -> Return | RemoteException:
    """Decode a reply packet (Return or Exception); raises ProtocolError if malformed."""
    reader, code = _read_header(packet, "RPC reply")
    if code not in (RpcCode.RETURN, RpcCode.EXCEPTION):
        raise reader.fail(f"code {code} is not Return (4) or Exception (5)")
    value = _single(reader, _read_args(reader), RpcCode(code).name.title())
    reader.end()
    if code == RpcCode.RETURN:
        return Return(value)
    if not isinstance(value, str):
        raise reader.fail(f"the Exception's value is {type(value).__name__}, not str")
    return RemoteException(value)


def decode_request(packet: bytes) -> GetGlobalFunc | CallFunc:
    """Decode a request packet (GetGlobalFunc or CallFunc); raises ProtocolError if malformed."""
    reader, code = _read_header(packet, "RPC request")
    if code == RpcCode.GET_GLOBAL_FUNC:
        name = _single(reader, _read_args(reader), "GetGlobalFunc")
        reader.end()
        if not isinstance(name, str):
            raise reader.fail(f"GetGlobalFunc's name is {type(name).__name__}, not str")
        return GetGlobalFunc(name)
    if code == RpcCode.CALL_FUNC:
        handle = int(reader.unpack("<Q", "handle"))
        args = _read_args(reader)
        reader.end()
        if any(isinstance(arg, FunctionHandle) for arg in args):
            raise reader.fail("a handle value is not allowed in CallFunc arguments")
        return CallFunc(handle, args)
    raise reader.fail(f"code {code} is not CallFunc (3) or GetGlobalFunc (9)")


def values_equal(left: Value, right: Value) -> bool:
    """Equality that also holds for NaN floats and tells handles, ints and bools apart."""
    if type(left) is not type(right):
        return False
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left):
        return math.isnan(right)
    return left == right
