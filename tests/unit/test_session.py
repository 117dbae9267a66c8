"""HostSession: every row of docs/protocol.md 2.3, from each state, plus the sending side."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.errors import ProtocolError, SessionStateError
from harness.protocol.framing import Framer, Unframer
from harness.protocol.session import (
    Event,
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

INIT = MessageType.START_SESSION_INIT
REPLY = MessageType.START_SESSION_REPLY
TERMINATE = MessageType.TERMINATE_SESSION
LOG = MessageType.LOG
NORMAL = MessageType.NORMAL
V1 = b"\x01"


class Device:
    """Frames messages the way a device would, so tests speak in session messages."""

    def __init__(self) -> None:
        self.framer = Framer()

    def send(
        self, host: HostSession, session_id: int, msg_type: int, body: bytes = b""
    ) -> list[Event]:
        host.receive_data(self.framer.encode(encode_message(session_id, msg_type, body)))
        events = []
        while (event := host.next_event()) is not None:
            events.append(event)
        return events


def unframe(wire: bytes) -> list[bytes]:
    return Unframer().feed(wire)


def fixed_nonces(*values: int) -> Callable[[], int]:
    """A nonce source that returns ``values`` in turn."""
    iterator = iter(values)
    return lambda: next(iterator)


@pytest.fixture
def device() -> Device:
    return Device()


def established(
    device: Device, nonce: int = 0x42, responder: int = 0x24, **options: Callable[[], int]
) -> HostSession:
    host = HostSession(**options)
    host.start(nonce)
    assert device.send(host, nonce | responder << 8, REPLY, V1) == [
        SessionEstablished(nonce | responder << 8)
    ]
    return host


# --- sending -------------------------------------------------------------------------------------


def test_start_sends_framed_init_with_fe() -> None:
    host = HostSession()
    wire = host.start(0x42)
    assert wire[:1] == b"\xfe"
    assert unframe(wire) == [bytes.fromhex("42000001")]
    assert host.state is SessionState.INIT_SENT
    assert host.session_id is None


@pytest.mark.parametrize("nonce", [0, 256, -1, True, 1.0])
def test_start_rejects_bad_nonce(nonce: object) -> None:
    with pytest.raises(ValueError, match=r"1\.\.255"):
        HostSession().start(nonce)  # type: ignore[arg-type]


@pytest.mark.parametrize("state", ["fresh", "init_sent"])
def test_send_needs_an_established_session(state: str) -> None:
    host = HostSession()
    if state == "init_sent":
        host.start(1)
    with pytest.raises(SessionStateError, match="established"):
        host.send(b"x")


def test_send_uses_session_id_and_no_second_fe(device: Device) -> None:
    host = established(device)
    wire = host.send(b"rpc")
    assert wire[:1] != b"\xfe"
    assert unframe(wire) == [bytes.fromhex("422410") + b"rpc"]


def test_reset_forgets_session_and_restarts_framer(device: Device) -> None:
    host = established(device)
    host.reset()
    assert host.state is SessionState.NO_SESSION
    assert host.session_id is None
    with pytest.raises(SessionStateError):
        host.send(b"x")
    assert host.start(7)[:1] == b"\xfe"


# --- StartSessionReply -----------------------------------------------------------------------


def test_reply_establishes_with_id_from_header(device: Device) -> None:
    host = established(device, 0x42, 0x24)
    assert host.state is SessionState.ESTABLISHED
    assert host.session_id == 0x2442


@pytest.mark.parametrize(
    ("session_id", "body", "reason"),
    [
        (0x2443, V1, "initiator nonce"),  # not our nonce
        (0x0042, V1, "responder nonce 0"),
        (0x2442, b"\x02", "version"),
        (0x2442, b"", "version"),
        (0x2442, b"\x01\x00", "version"),
    ],
)
def test_reply_rejected_in_init_sent(device: Device, session_id: int, body: bytes, reason: str):
    host = HostSession()
    host.start(0x42)
    [event] = device.send(host, session_id, REPLY, body)
    assert isinstance(event, MessageIgnored)
    assert reason in event.reason
    assert host.state is SessionState.INIT_SENT
    assert host.stats.ignored == 1


def test_reply_ignored_without_init(device: Device) -> None:
    host = HostSession()
    [event] = device.send(host, 0x2442, REPLY, V1)
    assert isinstance(event, MessageIgnored)
    assert host.state is SessionState.NO_SESSION


def test_reply_ignored_when_established(device: Device) -> None:
    host = established(device)
    [event] = device.send(host, 0x9942, REPLY, V1)
    assert isinstance(event, MessageIgnored)
    assert host.session_id == 0x2442


def test_restart_handshake_kills_old_session(device: Device) -> None:
    host = established(device)
    host.start(0x43)
    [event] = device.send(host, 0x2442, NORMAL, b"late")
    assert isinstance(event, MessageIgnored)
    assert device.send(host, 0xB543, REPLY, V1) == [SessionEstablished(0xB543)]
    [event] = device.send(host, 0x2442, NORMAL, b"old")
    assert isinstance(event, MessageIgnored)


# --- StartSessionInit from the peer ------------------------------------------------------------


@pytest.mark.parametrize("state", ["fresh", "established"])
def test_peer_init_is_answered_in_any_state(device: Device, state: str) -> None:
    if state == "established":
        host = established(device, nonce_source=fixed_nonces(0x77))
    else:
        host = HostSession(nonce_source=fixed_nonces(0x77))
    assert device.send(host, 0x0010, INIT, V1) == [SessionEstablished(0x7710)]
    assert unframe(host.data_to_send()) == [encode_message(0x7710, REPLY, V1)]
    assert host.data_to_send() == b""
    assert host.state is SessionState.ESTABLISHED


@pytest.mark.parametrize(
    ("session_id", "body"), [(0x0000, V1), (0x1200, V1), (0x0010, b"\x02"), (0x0010, b"")]
)
def test_peer_init_rejected(device: Device, session_id: int, body: bytes) -> None:
    host = HostSession(nonce_source=fixed_nonces(0x77))
    [event] = device.send(host, session_id, INIT, body)
    assert isinstance(event, MessageIgnored)
    assert host.data_to_send() == b""
    assert host.state is SessionState.NO_SESSION


def test_simultaneous_init_lower_peer_nonce_wins(device: Device) -> None:
    host = HostSession(nonce_source=fixed_nonces(0x99))
    host.start(0x50)
    assert device.send(host, 0x0020, INIT, V1) == [SessionEstablished(0x9920)]
    assert unframe(host.data_to_send()) == [encode_message(0x9920, REPLY, V1)]


def test_simultaneous_init_higher_peer_nonce_ignored(device: Device) -> None:
    host = HostSession(nonce_source=fixed_nonces(0x99))
    host.start(0x20)
    [event] = device.send(host, 0x0050, INIT, V1)
    assert isinstance(event, MessageIgnored)
    assert host.data_to_send() == b""
    assert host.state is SessionState.INIT_SENT


def test_simultaneous_init_equal_nonce_sends_new_init(device: Device) -> None:
    host = HostSession(nonce_source=fixed_nonces(0x20, 0x31))  # a repeat is skipped
    host.start(0x20)
    assert device.send(host, 0x0020, INIT, V1) == []
    [message] = unframe(host.data_to_send())
    session_id, msg_type, body = decode_message(message)
    assert msg_type is INIT and body == V1 and session_id not in (0, 0x20)
    assert host.state is SessionState.INIT_SENT
    assert device.send(host, session_id | 0x0100, REPLY, V1) == [
        SessionEstablished(session_id | 0x0100)
    ]


# --- TerminateSession --------------------------------------------------------------------------


@pytest.mark.parametrize("session_id", [0, 0x2442, 0xFFFF])
def test_terminate_with_any_id_ends_session(device: Device, session_id: int) -> None:
    host = established(device)
    assert device.send(host, session_id, TERMINATE) == [SessionTerminated(True, session_id)]
    assert host.state is SessionState.NO_SESSION
    assert host.session_id is None


def test_terminate_during_handshake(device: Device) -> None:
    host = HostSession()
    host.start(5)
    assert device.send(host, 0, TERMINATE) == [SessionTerminated(True, 0)]
    assert host.state is SessionState.NO_SESSION
    [event] = device.send(host, 0x0105, REPLY, V1)  # too late: the Init is gone
    assert isinstance(event, MessageIgnored)


def test_boot_wakeup_without_session(device: Device) -> None:
    host = HostSession()
    assert device.send(host, 0, TERMINATE) == [SessionTerminated(False, 0)]


# --- Log -----------------------------------------------------------------------------------------


def test_log_id_zero_in_any_state(device: Device) -> None:
    host = HostSession()
    assert device.send(host, 0, LOG, b"boot ok") == [LogReceived("boot ok", b"boot ok")]
    host = established(device)
    assert device.send(host, 0, LOG, b"") == [LogReceived("", b"")]


def test_log_with_session_id(device: Device) -> None:
    host = established(device)
    assert device.send(host, 0x2442, LOG, b"x") == [LogReceived("x", b"x")]


def test_log_with_other_id_ignored(device: Device) -> None:
    host = established(device)
    [event] = device.send(host, 0x1234, LOG, b"x")
    assert isinstance(event, MessageIgnored)


def test_log_invalid_utf8_is_replaced(device: Device) -> None:
    [event] = device.send(HostSession(), 0, LOG, b"bad \xff byte")
    assert event == LogReceived("bad \ufffd byte", b"bad \xff byte")


# --- Normal ------------------------------------------------------------------------------------


def test_normal_in_session_is_delivered(device: Device) -> None:
    host = established(device)
    assert device.send(host, 0x2442, NORMAL, b"reply") == [MessageReceived(b"reply")]
    assert device.send(host, 0x2442, NORMAL, b"") == [MessageReceived(b"")]


@pytest.mark.parametrize("session_id", [0, 0x2443, 0x2542])
def test_normal_with_wrong_id_ignored(device: Device, session_id: int) -> None:
    host = established(device)
    [event] = device.send(host, session_id, NORMAL, b"reply")
    assert isinstance(event, MessageIgnored)
    assert "session" in event.reason


@pytest.mark.parametrize("start", [False, True])
def test_normal_before_established_ignored(device: Device, start: bool) -> None:
    host = HostSession()
    if start:
        host.start(0x42)
    [event] = device.send(host, 0x2442, NORMAL, b"reply")
    assert isinstance(event, MessageIgnored)


# --- malformed payloads --------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"", b"\x00", b"\x42\x24"])
def test_short_payload_ignored(payload: bytes) -> None:
    host = HostSession()
    host.receive_data(Framer().encode(payload))
    event = host.next_event()
    assert isinstance(event, MessageIgnored)
    assert "shorter" in event.reason
    assert event.raw == payload


def test_unknown_type_ignored(device: Device) -> None:
    host = established(device)
    [event] = device.send(host, 0x2442, 0x11, b"?")
    assert isinstance(event, MessageIgnored)
    assert "0x11" in event.reason
    assert host.state is SessionState.ESTABLISHED


def test_stats_count_framing_and_ignored(device: Device) -> None:
    host = HostSession()
    host.receive_data(b"garbage" + Framer().encode(b"\x00"))
    host.receive_data(bytes.fromhex("fffd01000000410000"))  # bad CRC
    stats = host.stats
    assert stats.ignored == 1
    assert stats.framing.delivered == 1
    assert stats.framing.bad_crc == 1
    stats.framing.delivered = 99  # a snapshot: changing it changes nothing
    assert host.stats.framing.delivered == 1


def test_byte_at_a_time(device: Device) -> None:
    host = HostSession()
    host.start(0x42)
    wire = Framer().encode(encode_message(0x2442, REPLY, V1))
    wire += Framer().encode(encode_message(0x2442, NORMAL, b"ok"))[1:]
    for byte in wire:
        host.receive_data(bytes([byte]))
    assert host.next_event() == SessionEstablished(0x2442)
    assert host.next_event() == MessageReceived(b"ok")
    assert host.next_event() is None


# --- message codec -------------------------------------------------------------------------------


@given(
    session_id=st.integers(0, 0xFFFF),
    msg_type=st.sampled_from(list(MessageType)),
    body=st.binary(max_size=50),
)
def test_message_roundtrip(session_id: int, msg_type: MessageType, body: bytes) -> None:
    assert decode_message(encode_message(session_id, msg_type, body)) == (
        session_id,
        msg_type,
        body,
    )


def test_message_layout() -> None:
    assert encode_message(0x2442, NORMAL, b"x") == bytes.fromhex("42241078")


def test_message_codec_errors() -> None:
    with pytest.raises(ValueError, match="u16"):
        encode_message(0x10000, NORMAL, b"")
    with pytest.raises(ProtocolError, match="shorter"):
        decode_message(b"\x00\x00")
    with pytest.raises(ProtocolError, match="unknown"):
        decode_message(b"\x00\x00\x07")
