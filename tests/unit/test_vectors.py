"""The Python protocol package against every shared vector file in tests/vectors/.

The same files are checked against the C server (test_c_vectors.py); passing both is what makes
the two implementations agree byte for byte. A file that does not exist yet gives one skipped
placeholder with the reason, not a silent pass.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ProtocolError
from harness.protocol import rpc
from harness.protocol.crc import crc16
from harness.protocol.framing import Framer, Unframer, encode_packet
from harness.protocol.session import (
    HostSession,
    LogReceived,
    MessageIgnored,
    MessageReceived,
    MessageType,
    SessionEstablished,
    SessionState,
    SessionTerminated,
    decode_message,
    encode_message,
)

from .vector_files import cases as _cases
from .vector_files import need as _need

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
DROP_NAMES = ("bad_crc", "too_long", "invalid_escape", "interrupted")


def test_case_names_are_unique() -> None:
    for path in VECTORS.glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        for key, cases in data.items():
            names = [case["name"] for case in cases]
            assert len(names) == len(set(names)), f"{path.name} {key}: duplicate names"


# --- crc16.json ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", _cases("crc16.json"))
def test_crc16(case: Any) -> None:
    case = _need(case, "crc16.json")
    assert crc16(bytes.fromhex(case["data_hex"])) == case["crc"]


# --- framing.json ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", _cases("framing.json", "encode"))
def test_framing_encode(case: Any) -> None:
    case = _need(case, "framing.json")
    payload = bytes.fromhex(case["payload_hex"])
    wire = bytes.fromhex(case["wire_hex"])
    assert encode_packet(payload, nop=case["nop"]) == wire
    if case["nop"]:
        assert Framer().encode(payload) == wire
    assert Unframer().feed(wire) == [payload]


def _chunkings(wire: bytes, seed: str) -> list[list[bytes]]:
    """Whole, byte by byte, and a few random splits (seeded by the case name: reproducible)."""
    rng = random.Random(seed)
    chunkings = [[wire], [wire[i : i + 1] for i in range(len(wire))]]
    for _ in range(8):
        cuts = sorted(rng.randrange(len(wire) + 1) for _ in range(rng.randrange(1, 8)))
        bounds = [0, *cuts, len(wire)]
        chunkings.append([wire[a:b] for a, b in itertools.pairwise(bounds)])
    return chunkings


@pytest.mark.parametrize("case", _cases("framing.json", "decode"))
def test_framing_decode(case: Any) -> None:
    case = _need(case, "framing.json")
    wire = bytes.fromhex(case["wire_hex"])
    expected = [bytes.fromhex(p) for p in case["payloads_hex"]]
    for chunks in _chunkings(wire, case["name"]):
        unframer = Unframer(max_payload=case["max_payload"])
        out: list[bytes] = []
        for chunk in chunks:
            out += unframer.feed(chunk)
        sizes = [len(chunk) for chunk in chunks]
        assert out == expected, f"chunk sizes {sizes}"
        drops = {name: getattr(unframer.stats, name) for name in DROP_NAMES}
        assert drops == case["drops"], f"chunk sizes {sizes}"
        assert unframer.stats.delivered == len(expected)


# --- session.json (played from the host's side) ------------------------------------------------


def _device_message(hex_text: str) -> bytes:
    """A device message; ``*log*`` stands for the boot Log, whose text is free."""
    if hex_text == "*log*":
        return encode_message(0, MessageType.LOG, b"boot: vectors")
    return bytes.fromhex(hex_text)


def _host_would_send(host: HostSession, message: bytes) -> bytes | None:
    """Wire bytes the host itself produces for ``message``, or None if it never sends that.

    The vectors are written from the device's side and include messages no host sends
    (garbage, replies, Logs); those are simply not played.
    """
    try:
        session_id, msg_type, body = decode_message(message)
    except ProtocolError:
        return None
    if msg_type is MessageType.START_SESSION_INIT and body == b"\x01" and 0 < session_id < 256:
        return host.start(session_id)
    if msg_type is MessageType.NORMAL and host.session_id == session_id:
        return host.send(body)
    return None


@pytest.mark.parametrize("case", _cases("session.json"))
def test_session_host_side(case: Any) -> None:
    case = _need(case, "session.json")
    host = HostSession()
    device_framer = Framer()
    host_unframer = Unframer()  # stands for the device's receiver: checks the host's bytes
    expected_id: int | None = None
    for step in case["steps"]:
        if step["host_sends_hex"] is not None:
            message = bytes.fromhex(step["host_sends_hex"])
            wire = _host_would_send(host, message)
            if wire is not None:
                assert host_unframer.feed(wire) == [message], "host bytes differ from the vector"
        for hex_text in step["device_sends_hex"]:
            message = _device_message(hex_text)
            session_id, msg_type, body = decode_message(message)
            host.receive_data(device_framer.encode(message))
            event = host.next_event()
            assert host.next_event() is None
            assert not isinstance(event, MessageIgnored), event
            if msg_type is MessageType.START_SESSION_REPLY:
                expected_id = session_id
                assert event == SessionEstablished(session_id)
                assert host.state is SessionState.ESTABLISHED
                assert host.session_id == session_id
            elif msg_type is MessageType.NORMAL:
                assert event == MessageReceived(body)
                assert session_id == expected_id
            elif msg_type is MessageType.LOG:
                assert isinstance(event, LogReceived)
                assert event.raw == body
            else:
                assert isinstance(event, SessionTerminated)
    assert host.stats.ignored == 0
    if expected_id is not None and host.state is SessionState.ESTABLISHED:
        assert host.session_id == expected_id


# --- rpc.json --------------------------------------------------------------------------------


def _value(spec: dict[str, Any]) -> rpc.Value:
    kind = spec["type"]
    if kind == "null":
        return None
    if kind == "int":
        return int(spec["value"])
    if kind == "float":
        return float(spec["value"])  # also takes "nan" / "inf" spelled as strings
    if kind == "handle":
        return rpc.FunctionHandle(spec["value"])
    if kind == "str":
        return str(spec["value"])
    if kind == "bytes":
        return bytes.fromhex(spec["value"])
    raise AssertionError(f"unknown value type in rpc.json: {kind}")


def _same(left: rpc.Value, right: rpc.Value) -> bool:
    if type(left) is not type(right):
        return False
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left):
        return math.isnan(right)
    return left == right


@pytest.mark.parametrize("case", _cases("rpc.json"))
def test_rpc_request(case: Any) -> None:
    case = _need(case, "rpc.json")
    request = case["request"]
    packet = bytes.fromhex(case["request_hex"])
    if request["op"] == "raw":
        # Only bytes: the codec must reject them, or they are well-formed at the codec level
        # (malformed only for the dispatcher: unknown handle, wrong argument types) and then
        # must survive a decode/encode round trip.
        try:
            decoded = rpc.decode_request(packet)
        except ProtocolError:
            return
        if isinstance(decoded, rpc.GetGlobalFunc):
            assert rpc.encode_get_global_func(decoded.name) == packet
        else:
            assert rpc.encode_call(decoded.handle, decoded.args) == packet
        return
    if request["op"] == "get_global_func":
        assert rpc.encode_get_global_func(request["name"]) == packet
        assert rpc.decode_request(packet) == rpc.GetGlobalFunc(request["name"])
        return
    args = [_value(arg) for arg in request["args"]]
    assert rpc.encode_call(request["handle"], args) == packet
    decoded = rpc.decode_request(packet)
    assert isinstance(decoded, rpc.CallFunc)
    assert decoded.handle == request["handle"]
    assert len(decoded.args) == len(args)
    assert all(_same(a, b) for a, b in zip(decoded.args, args, strict=True))


@pytest.mark.parametrize("case", _cases("rpc.json"))
def test_rpc_reply(case: Any) -> None:
    case = _need(case, "rpc.json")
    reply = case["reply"]
    packet = bytes.fromhex(case["reply_hex"])
    decoded = rpc.decode_reply(packet)
    if reply["op"] == "exception":
        assert decoded == rpc.RemoteException(reply["message"])
        assert rpc.encode_exception(reply["message"]) == packet
    else:
        assert isinstance(decoded, rpc.Return)
        expected = _value(reply["value"])
        assert _same(decoded.value, expected), (decoded.value, expected)
        assert rpc.encode_return(expected) == packet
