"""Offline decoding of a wire trace: raw chunks back into frames, drops and noise.

A trace stores raw bytes only (see :mod:`harness.trace`); this module says what they meant.
It uses the project's own :class:`~harness.protocol.framing.Unframer` and session and RPC
decoders, one unframer per direction fed chunk by chunk in recorded order, so a frame split
across reads is decoded where its last byte arrived, exactly as the client saw it. Nothing
here may raise on bad input: a trace is read precisely when the wire carried something
wrong, so corrupt packets, unknown message types and malformed RPC bodies are described as
such, never thrown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.errors import ProtocolError
from harness.protocol import rpc
from harness.protocol.framing import DEFAULT_MAX_PAYLOAD, Unframer, UnframerStats
from harness.protocol.session import MessageType, decode_message
from harness.trace import DIRECTIONS, Direction

_PREVIEW_BYTES = 16
_PREVIEW_CHARS = 120
# Drop reasons as the unframer counts them (docs/protocol.md 1.3), in words.
_DROP_REASONS = {
    "bad_crc": "bad CRC",
    "too_long": "declared length too long",
    "invalid_escape": "invalid escape",
    "interrupted": "interrupted by a new FF FD",
}
_HANDSHAKE_NAMES = {
    MessageType.START_SESSION_INIT: "StartSessionInit",
    MessageType.START_SESSION_REPLY: "StartSessionReply",
}
# The bare FE sent before a first packet is skipped like noise, but it is not noise.
_LEADING_NOP = b"\xfe\xff\xfd"


@dataclass(frozen=True)
class Finding:
    """What a chunk completed: a ``frame`` (decoded), a ``drop`` (a packet the receiver
    discarded) or ``noise`` (bytes outside any packet)."""

    kind: Literal["frame", "drop", "noise"]
    text: str


def preview(data: bytes, limit: int = _PREVIEW_BYTES) -> str:
    """Hex of the first ``limit`` bytes, saying how many more there are."""
    shown = data[:limit].hex(" ")
    more = len(data) - limit
    return f"{shown} ... (+{more} bytes)" if more > 0 else shown or "(empty)"


def _short(text: str) -> str:
    shown = repr(text)
    return shown if len(shown) <= _PREVIEW_CHARS else shown[: _PREVIEW_CHARS - 4] + "...'"


def describe_value(value: rpc.Value) -> str:
    """One RPC value with its type: ``int 5``, ``bytes[3] 01 02 03``, ``str 'x'``."""
    if value is None:
        return "null"
    if isinstance(value, rpc.FunctionHandle):
        return f"handle {int(value)}"
    if isinstance(value, bytes):
        return f"bytes[{len(value)}] {preview(value)}"
    if isinstance(value, str):
        return f"str {_short(value)}"
    return f"{type(value).__name__} {value!r}"


def describe_rpc(packet: bytes) -> str:
    """An RPC packet (docs/protocol.md 3) in one line, or what is wrong with it."""
    if len(packet) < rpc.RPC_HEADER_SIZE:
        return (
            f"malformed RPC packet: {len(packet)} bytes, shorter than its "
            f"{rpc.RPC_HEADER_SIZE}-byte header ({preview(packet)})"
        )
    code = int.from_bytes(packet[8:12], "little", signed=True)
    try:
        if code in (rpc.RpcCode.GET_GLOBAL_FUNC, rpc.RpcCode.CALL_FUNC):
            request = rpc.decode_request(packet)
            if isinstance(request, rpc.GetGlobalFunc):
                return f"GetGlobalFunc({_short(request.name)})"
            args = ", ".join(describe_value(arg) for arg in request.args)
            return f"CallFunc(handle {request.handle}; {args or 'no arguments'})"
        if code in (rpc.RpcCode.RETURN, rpc.RpcCode.EXCEPTION):
            reply = rpc.decode_reply(packet)
            if isinstance(reply, rpc.RemoteException):
                return f"Exception({_short(reply.message)})"
            return f"Return({describe_value(reply.value)})"
    except ProtocolError as exc:
        return f"malformed RPC packet (code {code}): {exc}"
    return f"RPC packet with unknown code {code} ({preview(packet)})"


def describe_message(payload: bytes) -> str:
    """A frame payload as a session message (docs/protocol.md 2), or why it is not one."""
    try:
        session_id, msg_type, body = decode_message(payload)
    except ProtocolError as exc:
        return f"not a session message: {exc} ({preview(payload)})"
    where = f"id 0x{session_id:04x}"
    if msg_type in _HANDSHAKE_NAMES:
        return f"{_HANDSHAKE_NAMES[msg_type]} {where} version {body.hex() or '(missing)'}"
    if msg_type is MessageType.TERMINATE_SESSION:
        extra = f" with a {len(body)}-byte body ({preview(body)})" if body else ""
        return f"TerminateSession {where}{extra}"
    if msg_type is MessageType.LOG:
        return f"Log {where} {_short(body.decode('utf-8', 'replace'))}"
    return f"Normal {where} {describe_rpc(body)}"


class WireDecoder:
    """Decodes both directions of one trace segment, chunk by chunk, in recorded order."""

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        self._unframers = {direction: Unframer(max_payload) for direction in DIRECTIONS}

    def feed(self, direction: Direction, data: bytes) -> list[Finding]:
        """Everything ``data`` completed on ``direction``: frames in order, then drops and
        noise (the unframer counts those, so their order within one chunk is not known)."""
        unframer = self._unframers[direction]
        before = UnframerStats(**vars(unframer.stats))
        findings = [Finding("frame", describe_message(bytes(p))) for p in unframer.feed(data)]
        after = unframer.stats
        for reason, words in _DROP_REASONS.items():
            for _ in range(getattr(after, reason) - getattr(before, reason)):
                findings.append(Finding("drop", f"packet dropped: {words}"))
        noise = after.skipped_bytes - before.skipped_bytes - data.count(_LEADING_NOP)
        if noise > 0:
            plural = "s" if noise != 1 else ""
            findings.append(Finding("noise", f"{noise} byte{plural} outside any packet"))
        return findings

    def pending(self, direction: Direction) -> bool:
        """True when a packet on ``direction`` started but never ended."""
        return self._unframers[direction].pending


__all__ = [
    "Finding",
    "WireDecoder",
    "describe_message",
    "describe_rpc",
    "describe_value",
    "preview",
]
