"""Host side of the session layer: a sans-IO state machine (docs/protocol.md 2).

Modelled on h11: bytes go in with :meth:`HostSession.receive_data`, events come out of
:meth:`HostSession.next_event`, and the methods that send return the wire bytes to write. No
clock, socket or thread is touched here, so the client owns every deadline and the tests can
drive the machine byte by byte. Whatever the acceptance rules of 2.3 reject becomes a
:class:`MessageIgnored` event (and a counter), never an exception: a noisy line or a stale
reply must not crash the host, but a test report should be able to show it.
"""

from __future__ import annotations

import enum
import secrets
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from harness.errors import ProtocolError, SessionStateError
from harness.protocol.framing import DEFAULT_MAX_PAYLOAD, Framer, Unframer, UnframerStats

SESSION_HEADER_SIZE = 3
PROTOCOL_VERSION = b"\x01"


class MessageType(enum.IntEnum):
    """The ``u8 type`` of a session message."""

    START_SESSION_INIT = 0x00
    START_SESSION_REPLY = 0x01
    TERMINATE_SESSION = 0x02
    LOG = 0x03
    NORMAL = 0x10


class SessionState(enum.Enum):
    """States of docs/protocol.md 2.3."""

    NO_SESSION = "NoSession"
    INIT_SENT = "InitSent"
    ESTABLISHED = "Established"


def encode_message(session_id: int, msg_type: MessageType | int, body: bytes = b"") -> bytes:
    """The frame payload of one session message (header + body), unframed."""
    if not 0 <= session_id <= 0xFFFF:
        raise ValueError(f"session id {session_id} does not fit in u16")
    if not 0 <= msg_type <= 0xFF:
        raise ValueError(f"message type {msg_type} does not fit in u8")
    return struct.pack("<HB", session_id, msg_type) + bytes(body)


def decode_message(payload: bytes) -> tuple[int, MessageType, bytes]:
    """Split a frame payload into (session id, type, body).

    Raises ProtocolError for a payload shorter than the header or of an unknown type; the
    session turns both into :class:`MessageIgnored`, as 2.1 says.
    """
    if len(payload) < SESSION_HEADER_SIZE:
        raise ProtocolError(
            f"session message of {len(payload)} bytes is shorter than the 3-byte header"
        )
    session_id, raw_type = struct.unpack_from("<HB", payload)
    try:
        msg_type = MessageType(raw_type)
    except ValueError:
        raise ProtocolError(f"unknown session message type 0x{raw_type:02x}") from None
    return session_id, msg_type, bytes(payload[SESSION_HEADER_SIZE:])


# --- events -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionEstablished:
    """A session is up; ``session_id`` is the id of every Normal message from now on."""

    session_id: int


@dataclass(frozen=True)
class SessionTerminated:
    """The peer sent TerminateSession (it booted or reset).

    ``was_active`` tells whether a session or a handshake was live, i.e. whether something
    was actually lost; the device's boot wake-up arrives with ``was_active=False`` when no
    session had been opened yet.
    """

    was_active: bool
    session_id: int = 0
    """The id the TerminateSession carried (0 for the boot wake-up)."""


@dataclass(frozen=True)
class LogReceived:
    """A Log message; ``text`` is decoded leniently so a bad byte never loses a line."""

    text: str
    raw: bytes


@dataclass(frozen=True)
class MessageReceived:
    """The body of an accepted Normal message: one RPC packet."""

    payload: bytes


@dataclass(frozen=True)
class MessageIgnored:
    """A message that 2.3 says to ignore; ``reason`` says which rule, ``raw`` is the payload."""

    reason: str
    raw: bytes


Event = SessionEstablished | SessionTerminated | LogReceived | MessageReceived | MessageIgnored


@dataclass(frozen=True)
class SessionStats:
    """Snapshot of the counters: framing outcomes plus messages the session ignored."""

    framing: UnframerStats
    ignored: int


def _random_nonce() -> int:
    return secrets.randbelow(255) + 1


class HostSession:
    """The host's session: initiator by default, responder if the peer initiates (2.3)."""

    def __init__(
        self,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        *,
        nonce_source: Callable[[], int] = _random_nonce,
    ) -> None:
        """``nonce_source`` supplies nonces when the host has to pick one by itself (answering a
        peer's StartSessionInit, or re-sending an Init after a nonce tie); injectable so tests
        are deterministic."""
        self._framer = Framer()
        self._unframer = Unframer(max_payload)
        self._nonce_source = nonce_source
        self._events: deque[Event] = deque()
        self._outgoing = bytearray()
        self._ignored = 0
        self.state = SessionState.NO_SESSION
        self.session_id: int | None = None
        """The established session's id; None unless ESTABLISHED."""
        self.nonce = 0
        """Our initiator nonce while INIT_SENT (0 otherwise)."""

    # --- sending -----------------------------------------------------------------------------

    def start(self, nonce: int) -> bytes:
        """Begin a handshake with initiator ``nonce`` (1..255); returns the wire bytes to send.

        Any current session is dead from now on: its Normal messages are ignored.
        """
        if isinstance(nonce, bool) or not isinstance(nonce, int) or not 1 <= nonce <= 255:
            raise ValueError(f"nonce must be an int in 1..255, got {nonce!r}")
        self.state = SessionState.INIT_SENT
        self.session_id = None
        self.nonce = nonce
        return self._frame(nonce, MessageType.START_SESSION_INIT, PROTOCOL_VERSION)

    def send(self, rpc_packet: bytes) -> bytes:
        """Wire bytes of a Normal message carrying ``rpc_packet`` in the current session."""
        if self.state is not SessionState.ESTABLISHED or self.session_id is None:
            raise SessionStateError(
                f"cannot send an RPC packet in session state {self.state.value}: "
                "a session must be established first (start() and wait for SessionEstablished)"
            )
        return self._frame(self.session_id, MessageType.NORMAL, rpc_packet)

    def data_to_send(self) -> bytes:
        """Bytes the session produced by itself (answering a peer's Init); drains the buffer."""
        data = bytes(self._outgoing)
        self._outgoing.clear()
        return data

    def reset(self) -> None:
        """Forget the session and restart the framer, so the next packet starts with FE.

        Bytes already received stay in the unframer (they belong to the line, not to the session)
        and events already queued stay queued; unsent automatic replies are dropped.
        """
        self.state = SessionState.NO_SESSION
        self.session_id = None
        self.nonce = 0
        self._framer.reset()
        self._outgoing.clear()

    def _frame(self, session_id: int, msg_type: MessageType, body: bytes) -> bytes:
        return self._framer.encode(encode_message(session_id, msg_type, body))

    # --- receiving ---------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the line; the resulting events queue up for :meth:`next_event`."""
        for payload in self._unframer.feed(data):
            self._receive_message(payload)

    def next_event(self) -> Event | None:
        """The oldest queued event, or None when there is none."""
        return self._events.popleft() if self._events else None

    @property
    def stats(self) -> SessionStats:
        """Framing counters (a copy) and the number of ignored messages."""
        framing = UnframerStats(**vars(self._unframer.stats))
        return SessionStats(framing=framing, ignored=self._ignored)

    def _ignore(self, reason: str, raw: bytes) -> None:
        self._ignored += 1
        self._events.append(MessageIgnored(reason, raw))

    def _receive_message(self, payload: bytes) -> None:
        try:
            session_id, msg_type, body = decode_message(payload)
        except ProtocolError as exc:
            self._ignore(str(exc), payload)
            return
        if msg_type is MessageType.START_SESSION_INIT:
            self._on_init(session_id, body, payload)
        elif msg_type is MessageType.START_SESSION_REPLY:
            self._on_reply(session_id, body, payload)
        elif msg_type is MessageType.TERMINATE_SESSION:
            was_active = self.state is not SessionState.NO_SESSION
            self.state = SessionState.NO_SESSION
            self.session_id = None
            self.nonce = 0
            self._events.append(SessionTerminated(was_active, session_id))
        elif msg_type is MessageType.LOG:
            if session_id == 0 or session_id == self.session_id:
                self._events.append(LogReceived(body.decode("utf-8", "replace"), body))
            else:
                self._ignore(f"Log with id 0x{session_id:04x}, not 0 or the session's", payload)
        elif self.state is not SessionState.ESTABLISHED:
            self._ignore(f"Normal message in state {self.state.value}", payload)
        elif session_id != self.session_id:
            self._ignore(
                f"Normal message for session 0x{session_id:04x}, "
                f"current is 0x{self.session_id:04x}",
                payload,
            )
        else:
            self._events.append(MessageReceived(body))

    def _on_reply(self, session_id: int, body: bytes, payload: bytes) -> None:
        if self.state is not SessionState.INIT_SENT:
            self._ignore(f"StartSessionReply in state {self.state.value}", payload)
        elif session_id & 0xFF != self.nonce:
            self._ignore(
                f"StartSessionReply for initiator nonce {session_id & 0xFF}, ours is {self.nonce}",
                payload,
            )
        elif session_id >> 8 == 0:
            self._ignore("StartSessionReply with responder nonce 0", payload)
        elif body != PROTOCOL_VERSION:
            self._ignore(f"StartSessionReply with version {body.hex() or 'missing'}", payload)
        else:
            self._establish(session_id)

    def _on_init(self, session_id: int, body: bytes, payload: bytes) -> None:
        peer_nonce = session_id & 0xFF
        if peer_nonce == 0:
            self._ignore("StartSessionInit with initiator nonce 0", payload)
            return
        if body != PROTOCOL_VERSION:
            self._ignore(f"StartSessionInit with version {body.hex() or 'missing'}", payload)
            return
        if self.state is SessionState.INIT_SENT:
            # Both ends initiated at once: the lower initiator nonce wins.
            if peer_nonce > self.nonce:
                self._ignore("StartSessionInit with a higher nonce than ours", payload)
                return
            if peer_nonce == self.nonce:
                nonce = self._pick_nonce(avoid=self.nonce)
                self._outgoing += self.start(nonce)
                return
        responder = self._pick_nonce(avoid=0)
        new_id = peer_nonce | responder << 8
        # A new session starts on a clean line (docs/protocol.md 1.2): the reply gets the FE.
        self._framer.reset()
        self._outgoing += self._frame(new_id, MessageType.START_SESSION_REPLY, PROTOCOL_VERSION)
        self._establish(new_id)

    def _pick_nonce(self, avoid: int) -> int:
        nonce = self._nonce_source()
        if not 1 <= nonce <= 255 or nonce == avoid:
            nonce = avoid % 255 + 1  # a source that misbehaves must not stall the handshake
        return nonce

    def _establish(self, session_id: int) -> None:
        self.state = SessionState.ESTABLISHED
        self.session_id = session_id
        self.nonce = 0
        self._events.append(SessionEstablished(session_id))
