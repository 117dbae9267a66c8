"""The C server code (through ctypes) against the shared vectors in tests/vectors/.

Every case of crc16.json, framing.json, session.json and rpc.json runs against the real C
sources built into ``librpc_server_test.so``; a few C-only checks follow (server lifecycle,
rpc.info, the initiator half of the session layer) that the vectors cannot express.
"""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path
from typing import Any

import pytest

from tests.unit import c_library as c

from .vector_files import cases as _cases
from .vector_files import need as _need

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
DROP_NAMES = ("bad_crc", "too_long", "invalid_escape", "interrupted")


def _load(name: str) -> dict[str, Any]:
    path = VECTORS / name
    if not path.exists():
        pytest.skip(f"{path} does not exist yet")
    return json.loads(path.read_text(encoding="utf-8"))


# ---- crc16.json ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", _cases("crc16.json"))
def test_crc16_vector(case: Any) -> None:
    case = _need(case, "crc16.json")
    assert c.crc16(bytes.fromhex(case["data_hex"])) == case["crc"]


def test_crc16_check_value() -> None:
    assert c.crc16(b"123456789") == 0x29B1


# ---- framing.json -------------------------------------------------------------------------


@pytest.mark.parametrize("case", _cases("framing.json", "encode"))
def test_framing_encode_vector(case: Any) -> None:
    case = _need(case, "framing.json")
    payload = bytes.fromhex(case["payload_hex"])
    wire = bytes.fromhex(case["wire_hex"])
    assert c.frame(payload, nop=case["nop"]).hex() == wire.hex()
    # Streaming the payload in pieces must give the same bytes.
    for chunk in (1, 3):
        assert c.frame(payload, nop=case["nop"], chunk=chunk).hex() == wire.hex()


def _splits(data: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, rng.randint(1, 6))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def _decode(max_payload: int, chunks: list[bytes]) -> tuple[list[bytes], dict[str, int]]:
    payloads, stats = c.unframe_chunks(max_payload, chunks)
    return payloads, {name: stats[name] for name in DROP_NAMES}


@pytest.mark.parametrize("case", _cases("framing.json", "decode"))
def test_framing_decode_vector(case: Any) -> None:
    case = _need(case, "framing.json")
    wire = bytes.fromhex(case["wire_hex"])
    expected = ([bytes.fromhex(p) for p in case["payloads_hex"]], case["drops"])
    rng = random.Random(case["name"])
    chunkings = {
        "whole": [wire],
        "byte by byte": [wire[i : i + 1] for i in range(len(wire))],
    }
    if len(wire) > 1:
        for n in range(5):
            chunkings[f"random split {n}"] = _splits(wire, rng)
    for how, chunks in chunkings.items():
        payloads, drops = _decode(case["max_payload"], chunks)
        assert (payloads, drops) == expected, how


# ---- rpc.json -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", _cases("rpc.json"))
def test_rpc_vector(case: Any) -> None:
    case = _need(case, "rpc.json")
    reply = c.dispatch(bytes.fromhex(case["request_hex"]))
    assert reply.hex() == case["reply_hex"]


# ---- session.json -------------------------------------------------------------------------


def _payloads(wire: bytes) -> list[bytes]:
    unframer = c.CUnframer(c.max_packet())
    payloads = unframer.feed(wire)
    assert {n: v for n, v in unframer.stats.items() if n != "delivered"} == dict.fromkeys(
        DROP_NAMES, 0
    ), f"the device sent a bad frame: {wire.hex()}"
    return payloads


def _matches(expected: list[str], sent: list[bytes]) -> bool:
    if len(expected) != len(sent):
        return False
    for want, got in zip(expected, sent, strict=True):
        if want == "*log*":
            if got[:3] != b"\x00\x00\x03":
                return False
        elif got.hex() != want:
            return False
    return True


START_SESSION_REPLY = 0x01  # message type byte of a StartSessionReply (docs/protocol.md 2.1)


@pytest.mark.parametrize("case", _cases("session.json"))
def test_session_vector(case: Any) -> None:
    case = _need(case, "session.json")
    server = c.CServer(case["device_nonce_seed"])
    first_packet = True
    for number, step in enumerate(case["steps"]):
        if step["host_sends_hex"] is None:
            assert number == 0, "only the first step may be the boot"
            server.start()
        else:
            server.feed(c.frame(bytes.fromhex(step["host_sends_hex"]), nop=number == 1))
        wire = server.output()
        sent = _payloads(wire)
        # The device's framing is byte-exact too: FE before its very first packet and before
        # every StartSessionReply (a new session starts on a clean line), before no other.
        assert wire == b"".join(
            c.frame(p, nop=(first_packet and i == 0) or p[2] == START_SESSION_REPLY)
            for i, p in enumerate(sent)
        ), f"step {number}: unexpected framing"
        if sent:
            first_packet = False
        assert _matches(step["device_sends_hex"], sent), (
            f"step {number}: host sent {step['host_sends_hex']}, "
            f"expected {step['device_sends_hex']}, device sent {[p.hex() for p in sent]}"
        )
    server.close()


# ---- C-only checks ------------------------------------------------------------------------


def _packet(code: int, body: bytes) -> bytes:
    return struct.pack("<Qi", 4 + len(body), code) + body


def _call(handle: int, *args: tuple[int, bytes]) -> bytes:
    codes = b"".join(struct.pack("<i", code) for code, _ in args)
    values = b"".join(value for _, value in args)
    return _packet(3, struct.pack("<Qi", handle, len(args)) + codes + values)


def _int(v: int) -> tuple[int, bytes]:
    return 0, struct.pack("<q", v)


def _bytes(b: bytes, code: int = 12) -> tuple[int, bytes]:
    return code, struct.pack("<Q", len(b)) + b


def _str(s: str) -> tuple[int, bytes]:
    return _bytes(s.encode(), 11)


def _decode_reply(reply: bytes) -> tuple[int, int, bytes]:
    """(code, type, value bytes) of a one-value reply."""
    nbytes, code, num, type_code = struct.unpack_from("<Qiii", reply)
    assert nbytes == len(reply) - 8 and num == 1
    value = reply[20:]
    if type_code in (11, 12):
        (n,) = struct.unpack_from("<Q", value)
        assert n == len(value) - 8
        value = value[8:]
    return code, type_code, value


def _exception(reply: bytes) -> str:
    code, type_code, value = _decode_reply(reply)
    assert (code, type_code) == (5, 11)
    return value.decode()


def test_nonce_sequence_matches_spec_and_never_gives_zero() -> None:
    for seed in range(256):
        expected = (5 * seed + 1) % 256 or 1
        assert c.next_nonce(seed) == expected != 0


def test_echo_reply_too_large_is_an_exception() -> None:
    # The dispatcher alone (no frame limit on the request) hits the reply limit: 31 bytes of
    # reply overhead, so room for max_packet - 31 bytes.
    payload = bytes(c.max_packet() - 31 + 1)
    message = _exception(c.dispatch(_call(1, _bytes(payload))))
    assert message == f"rpc.echo: return value too large: {len(payload)} bytes, room for 2017"


def test_sleep_ms_range_and_missing_reply_for_reset() -> None:
    assert _exception(c.dispatch(_call(5, _int(60001)))) == (
        "rpc.sleep_ms: argument out of range 0..60000: 60001"
    )
    assert _exception(c.dispatch(_call(5, _int(-1)))) == (
        "rpc.sleep_ms: argument out of range 0..60000: -1"
    )
    code, type_code, _ = _decode_reply(c.dispatch(_call(5, _int(60000))))
    assert (code, type_code) == (4, 4)
    # The test platform's reset hook returns, i.e. "reset scheduled": no reply at all.
    assert c.dispatch(_call(7)) == b""
    assert _exception(c.dispatch(_call(7, _int(1)))) == "rpc.reset: expected 0 arguments, got 1"


def test_info_is_json_with_every_key() -> None:
    code, type_code, value = _decode_reply(c.dispatch(_call(3)))
    assert (code, type_code) == (4, 11)
    info = json.loads(value)
    assert info == {
        "firmware_version": "0.0.0-test",
        "board": "test",
        "boot_count": 1,
        "boot_id": "0123456789abcdef",
        "uptime_ms": 1234,
        "max_payload": c.max_packet() - 39,
        "max_packet": c.max_packet(),
        "reset_cause": "power-on",
    }


def test_log_without_sink_raises_in_bare_dispatcher() -> None:
    assert _exception(c.dispatch(_call(4, _str("x")))) == "rpc.log: could not send the Log message"


def _handshake(server: c.CServer, host_nonce: int = 0x42) -> int:
    server.start()
    server.output()
    server.feed(c.frame(struct.pack("<HB", host_nonce, 0) + b"\x01", nop=True))
    (reply,) = _payloads(server.output())
    (session_id,) = struct.unpack_from("<H", reply)
    return session_id


def test_server_lifecycle_console_and_stats() -> None:
    server = c.CServer(7)
    session_id = _handshake(server)
    assert session_id == 0x2442
    assert server.status()["state"] == 2 and server.status()["session_id"] == 0x2442
    lines = server.console()
    assert lines[0] == "boot: firmware 0.0.0-test board test reset-cause power-on"
    assert lines[1] == "session established id=0x2442"

    # rpc.sleep_ms goes through the platform hook; rpc.reset sends nothing.
    header = struct.pack("<HB", session_id, 0x10)
    server.feed(c.frame(header + _call(5, _int(25))))
    assert len(_payloads(server.output())) == 1
    server.feed(c.frame(header + _call(7)))
    assert server.output() == b""
    assert server.status()["resets"] == 1 and server.status()["slept_ms"] == 25

    # The largest frame is accepted and answered, one byte more is dropped unread. A CallFunc
    # request carries an 8-byte handle that the reply does not, so the largest echo that fits
    # a request frame is max_packet - 39.
    echo = bytes(range(256)) * 8
    biggest = header + _call(1, _bytes(echo[: c.max_packet() - 39]))
    assert len(biggest) == c.max_packet()
    server.feed(c.frame(biggest))
    (reply,) = _payloads(server.output())
    assert _decode_reply(reply[3:])[2] == echo[: c.max_packet() - 39]
    server.feed(c.frame(header + _call(1, _bytes(echo[: c.max_packet() - 38]))))
    assert server.output() == b""
    assert server.stats["too_long"] == 1

    # Application logs go out with id 0; a host Log reaches the console.
    assert server.log(b"hello") == 0
    assert _payloads(server.output()) == [b"\x00\x00\x03hello"]
    server.feed(c.frame(b"\x00\x00\x03from host"))
    assert server.console() == ["host log: from host"]
    server.feed(c.frame(struct.pack("<HB", 0, 2)))
    assert server.console() == ["session closed"]
    server.close()


def test_initiator_handshake() -> None:
    a = c.CSession(7)
    a.initiate()
    assert a.state == "init_sent"
    assert a.sent() == [bytes.fromhex("24000001")]
    # Wrong initiator half, responder half 0, wrong version: ignored.
    for bad in ("25990101", "24000101", "24990102", "249901"):
        a.receive(bytes.fromhex(bad))
        assert a.state == "init_sent"
    a.receive(bytes.fromhex("24990101"))
    assert (a.state, a.session_id) == ("established", 0x9924)
    a.receive(bytes.fromhex("2499100102"))
    assert a.normal_bodies() == [b"\x01\x02"]
    a.receive(bytes.fromhex("00000203"))  # TerminateSession with a body, any id
    assert a.state == "no_session"
    a.close()


@pytest.mark.parametrize(
    ("peer_nonce", "outcome"),
    [(0x10, "answer"), (0x24, "new_init"), (0x30, "ignore")],
)
def test_simultaneous_init_lower_nonce_wins(peer_nonce: int, outcome: str) -> None:
    a = c.CSession(7)  # first nonce 0x24
    a.initiate()
    a.sent()
    a.receive(struct.pack("<HB", peer_nonce, 0) + b"\x01")
    sent = a.sent()
    if outcome == "answer":
        assert sent == [struct.pack("<HBB", peer_nonce | 0xB5 << 8, 1, 1)]
        assert (a.state, a.session_id) == ("established", peer_nonce | 0xB5 << 8)
    elif outcome == "new_init":
        assert sent == [bytes.fromhex("b5000001")]
        assert a.state == "init_sent"
    else:
        assert sent == []
        assert a.state == "init_sent"
    a.close()


def test_session_log_acceptance() -> None:
    s = c.CSession(7)
    s.receive(bytes.fromhex("000003"))  # empty log, id 0
    s.receive(bytes.fromhex("00010378"))  # wrong id
    s.receive(bytes.fromhex("42000001"))
    s.receive(bytes.fromhex("42240379"))  # current id
    assert s.logs() == [b"", b"y"]
    s.close()


def test_handshake_gets_through_after_a_frame_torn_inside_an_escape() -> None:
    """Found by the fault soak (seed 101): a reply torn right after the first FF of an escaped
    FF FF leaves the host's unframer waiting for the escape's second byte. The device's
    StartSessionReply must start with FE so that its FF FD is still a packet start."""
    from harness.protocol.session import HostSession, SessionEstablished

    server = c.CServer(7)
    server.start()
    host = HostSession()
    host.receive_data(server.output())  # the boot
    torn = c.frame(b"\x42\x24\x00" + b"\xff" * 8)
    torn = torn[: torn.index(b"\xff\xff", 2) + 1]  # ends on the first FF of an escape
    host.receive_data(torn)
    server.feed(host.start(0x42))
    host.receive_data(server.output())
    events = []
    while (event := host.next_event()) is not None:
        events.append(event)
    assert any(isinstance(event, SessionEstablished) for event in events), events
    server.close()
