"""The wire protocol, sans-IO: bytes in, events and bytes out (docs/protocol.md).

Nothing in this package reads a clock, a socket or a thread; transports and the client do the
I/O and own the deadlines. That keeps the codec fast, fuzzable and testable byte by byte.
Layers, bottom up: :mod:`.crc`, :mod:`.framing`, :mod:`.session`, :mod:`.rpc`.
"""

from harness.protocol.crc import crc16
from harness.protocol.framing import Framer, Unframer, UnframerStats, encode_packet
from harness.protocol.rpc import (
    CallFunc,
    FunctionHandle,
    GetGlobalFunc,
    RemoteException,
    Return,
    RpcCode,
    TypeCode,
    decode_reply,
    decode_request,
    encode_call,
    encode_exception,
    encode_get_global_func,
    encode_return,
    max_echo_payload,
)
from harness.protocol.session import (
    HostSession,
    LogReceived,
    MessageIgnored,
    MessageReceived,
    MessageType,
    SessionEstablished,
    SessionState,
    SessionStats,
    SessionTerminated,
    decode_message,
    encode_message,
)

__all__ = [
    "CallFunc",
    "Framer",
    "FunctionHandle",
    "GetGlobalFunc",
    "HostSession",
    "LogReceived",
    "MessageIgnored",
    "MessageReceived",
    "MessageType",
    "RemoteException",
    "Return",
    "RpcCode",
    "SessionEstablished",
    "SessionState",
    "SessionStats",
    "SessionTerminated",
    "TypeCode",
    "Unframer",
    "UnframerStats",
    "crc16",
    "decode_message",
    "decode_reply",
    "decode_request",
    "encode_call",
    "encode_exception",
    "encode_get_global_func",
    "encode_message",
    "encode_packet",
    "encode_return",
    "max_echo_payload",
]
