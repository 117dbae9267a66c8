"""The RPC client: drives a HostSession over a Transport and owns every deadline.

The protocol objects underneath are sans-IO; this is the one place where bytes are read,
clocks are looked at and errors are raised. It is deliberately strict about resets: when
the device says its session is gone, the pending call fails with SessionTerminatedError and
every later call fails the same way until ``reconnect()`` is called, so an unexpected
reboot can never be papered over by a silent re-handshake.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.errors import (
    CallTimeoutError,
    FramingError,
    HandshakeTimeoutError,
    ProtocolError,
    RemoteError,
    SessionStateError,
    SessionTerminatedError,
    TargetError,
    TransportClosedError,
)
from harness.protocol import rpc
from harness.protocol.session import (
    HostSession,
    LogReceived,
    MessageIgnored,
    MessageReceived,
    SessionEstablished,
    SessionState,
    SessionTerminated,
)
from harness.transport.base import Transport

if TYPE_CHECKING:
    from harness.targets.base import Target

SESSION_HEADER_SIZE = 3
# The device function behind each in-band reset kind (see Target.reset).
INBAND_RESET_FUNCTIONS = {"rpc": "rpc.reset", "fatal": "app.fatal"}
# How long one read may block while waiting; short so deadlines are honoured closely.
_POLL_S = 0.05
_SEEN_TAIL_BYTES = 64


class UnknownFunctionError(RemoteError):
    """The device has no function of that name (its GetGlobalFunc raised)."""


@dataclass
class ClientStats:
    """Counters a test or a report can read; they make silent recoveries visible."""

    handshakes: int = 0
    init_sent: int = 0
    calls: int = 0
    terminations: int = 0
    ignored_messages: int = 0
    stray_replies: int = 0
    bytes_received: int = 0
    bytes_sent: int = 0


@dataclass
class _Wait:
    """What arrived while waiting for one thing; used to say what was seen on a timeout."""

    started: float = field(default_factory=time.monotonic)
    received: int = 0
    tail: bytes = b""
    frames: int = 0

    def note(self, data: bytes) -> None:
        self.received += len(data)
        self.tail = (self.tail + data)[-_SEEN_TAIL_BYTES:]

    def describe(self) -> str:
        if not self.received:
            return "nothing at all was received"
        return (
            f"received {self.received} bytes ({self.frames} session messages); "
            f"last bytes: {self.tail.hex(' ')}"
        )


class Client:
    """Handshakes with a device and calls its functions by name."""

    def __init__(
        self,
        transport: Transport,
        *,
        max_payload: int = 65536,
        handshake_timeout: float = 5.0,
        call_timeout: float = 10.0,
        reset_timeout: float = 10.0,
        handshake_retry_interval: float | None = None,
        device: Target | None = None,
        on_log: Callable[[str], None] | None = None,
    ) -> None:
        self.transport = transport
        self.device = device
        self.handshake_timeout = handshake_timeout
        self.call_timeout = call_timeout
        self.reset_timeout = reset_timeout
        self.handshake_retry_interval = handshake_retry_interval
        self.max_payload = max_payload
        self.session = HostSession(max_payload=max_payload)
        self.logs: list[str] = []
        self.stats = ClientStats()
        self._on_log = on_log
        self._handles: dict[str, int] = {}
        self._unusable_reason: str | None = "no session yet: call handshake()"
        self._lock = threading.RLock()
        self._last_nonce = 0
        if device is not None:
            device.set_inband_reset(self._rpc_reset)

    @classmethod
    def for_target(cls, target: Target, **overrides: object) -> Client:
        """A client with the deadlines and sizes that ``target``'s board states."""
        board = target.board
        options: dict[str, object] = {
            "max_payload": board.max_packet,
            "handshake_timeout": board.timeouts.handshake,
            "call_timeout": board.timeouts.call,
            "reset_timeout": board.timeouts.reset,
            "handshake_retry_interval": board.handshake_retry_interval,
            "device": target,
        }
        options.update(overrides)
        return cls(target.transport, **options)  # type: ignore[arg-type]

    # -- session ---------------------------------------------------------------------------

    @property
    def session_id(self) -> int | None:
        return self.session.session_id if self.session.state is SessionState.ESTABLISHED else None

    def _new_nonce(self) -> int:
        while True:
            nonce = secrets.randbelow(255) + 1
            if nonce != self._last_nonce:
                self._last_nonce = nonce
                return nonce

    def _send_init(self) -> None:
        self._write(self.session.start(self._new_nonce()))
        self.stats.init_sent += 1

    def handshake(self, timeout: float | None = None) -> int:
        """Open a new session and return its id.

        If the device is booting (just started or reset by its target), the boot's wake-up
        TerminateSession is the ready signal: it is awaited first, so the Init is not sent
        to a device that cannot hear it yet. A TerminateSession that arrives after the Init
        means the device rebooted under us, so a fresh Init is sent. Boards that declare
        ``handshake_retry_interval`` (a serial port opened after boot can miss the wake-up)
        also resend the Init periodically instead of awaiting the boot. Every Init is
        counted in ``stats.init_sent`` so a silent retry never goes unseen.
        """
        with self._lock:
            timeout = self.handshake_timeout if timeout is None else timeout
            deadline = time.monotonic() + timeout
            self._handles.clear()
            self.session.reset()
            wait = _Wait()
            if (
                self.device is not None
                and self.device.boot_pending
                and not self.handshake_retry_interval
            ):
                self._await_boot(deadline, timeout, wait)
            self._send_init()
            next_resend = (
                time.monotonic() + self.handshake_retry_interval
                if self.handshake_retry_interval
                else None
            )
            while True:
                while (event := self._next_event(wait)) is not None:
                    if isinstance(event, SessionEstablished):
                        self._unusable_reason = None
                        self.stats.handshakes += 1
                        return event.session_id
                    if isinstance(event, SessionTerminated):
                        self._send_init()
                    elif isinstance(event, MessageReceived):
                        self.stats.stray_replies += 1
                now = time.monotonic()
                if now >= deadline:
                    raise HandshakeTimeoutError(
                        f"no StartSessionReply from {self.transport.description} within "
                        f"{timeout:.2f}s after {self.stats.init_sent} StartSessionInit "
                        f"message(s) in this client's life; {wait.describe()}; "
                        f"{self._unframer_summary()}{self._post_mortem()}"
                    )
                if next_resend is not None and now >= next_resend:
                    self._send_init()
                    next_resend = now + (self.handshake_retry_interval or 0)
                self._receive(min(deadline - now, _POLL_S), wait)

    def _await_boot(self, deadline: float, timeout: float, wait: _Wait) -> None:
        """Wait for the wake-up TerminateSession of a booting device (its ready signal)."""
        while True:
            while (event := self._next_event(wait)) is not None:
                if isinstance(event, SessionTerminated):
                    return
                if isinstance(event, MessageReceived):
                    self.stats.stray_replies += 1
            now = time.monotonic()
            if now >= deadline:
                raise HandshakeTimeoutError(
                    f"{self.transport.description} did not announce its boot (the wake-up "
                    f"TerminateSession) within {timeout:.2f}s; {wait.describe()}; "
                    f"{self._unframer_summary()}{self._post_mortem()}"
                )
            self._receive(min(deadline - now, _POLL_S), wait)

    def await_boot(self, timeout: float | None = None) -> None:
        """Wait for the device's wake-up TerminateSession without opening a session.

        It is the ready signal of a boot: once it has arrived the device has counted the boot
        and listens. Tests use it to act right after a boot (a second reset in quick
        succession) without sleeping. Raises HandshakeTimeoutError past the deadline.
        """
        with self._lock:
            timeout = self.reset_timeout if timeout is None else timeout
            self._await_boot(time.monotonic() + timeout, timeout, _Wait())

    def reconnect(self, timeout: float | None = None) -> int:
        """Open a new session after a reset or a failed call; returns the new session id."""
        return self.handshake(timeout)

    # -- calls -------------------------------------------------------------------------------

    def call(self, name: str, *args: object, timeout: float | None = None) -> object:
        """Call the device function ``name`` and return its value.

        Raises RemoteError if the device raised, UnknownFunctionError if it has no such
        function, SessionTerminatedError if it reset (now or since the last call),
        CallTimeoutError if it did not answer in time.
        """
        with self._lock:
            timeout = self.call_timeout if timeout is None else timeout
            deadline = time.monotonic() + timeout
            self._check_usable(name)
            handle = self._handles.get(name)
            if handle is None:
                reply = self._request(
                    rpc.encode_get_global_func(name), deadline, timeout, f"lookup of {name}"
                )
                if isinstance(reply, rpc.RemoteException):
                    cls = (
                        UnknownFunctionError
                        if reply.message.startswith("no such function")
                        else RemoteError
                    )
                    raise cls(name, reply.message)
                if not isinstance(reply.value, int) or isinstance(reply.value, bool):
                    raise ProtocolError(
                        f"GetGlobalFunc({name!r}) returned {reply.value!r}, not a handle"
                    )
                handle = int(reply.value)
                self._handles[name] = handle
            reply = self._request(
                rpc.encode_call(handle, list(args)), deadline, timeout, f"reply to {name}"
            )
            self.stats.calls += 1
            if isinstance(reply, rpc.RemoteException):
                raise RemoteError(name, reply.message)
            return reply.value

    def send_raw(self, data: bytes) -> None:
        """Write raw bytes to the device (noise, hand-made frames); for tests of robustness."""
        with self._lock:
            self._write(data)

    def close(self) -> None:
        if self.device is not None:
            self.device.set_inband_reset(None)

    # -- internals ---------------------------------------------------------------------------

    def _check_usable(self, name: str) -> None:
        # Whatever arrived while idle (a reboot's wake-up, logs) is processed first, so a
        # reset that happened between calls is reported instead of hidden.
        wait = _Wait()
        self._receive(0.0, wait)
        while (event := self._next_event(wait)) is not None:
            # Logs are recorded and terminations noted by _next_event; a reply nobody
            # asked for is counted, never handed to the next call.
            if isinstance(event, MessageReceived):
                self.stats.stray_replies += 1
        if self._unusable_reason is not None:
            if self._unusable_reason.startswith("terminated"):
                raise SessionTerminatedError(
                    f"cannot call {name}: the device {self._unusable_reason}; call reconnect()"
                )
            raise SessionStateError(f"cannot call {name}: {self._unusable_reason}")

    def _request(
        self, packet: bytes, deadline: float, timeout: float, what: str
    ) -> rpc.Return | rpc.RemoteException:
        size = SESSION_HEADER_SIZE + len(packet)
        if size > self.max_payload:
            raise FramingError(
                f"the {what.replace('reply to', 'request for')} needs a {size}-byte frame "
                f"payload but the device takes at most max_packet={self.max_payload} bytes; "
                f"for rpc.echo that is {rpc.max_echo_payload(self.max_payload)} bytes of data"
            )
        self._write(self.session.send(packet))
        wait = _Wait()
        while True:
            while (event := self._next_event(wait)) is not None:
                if isinstance(event, MessageReceived):
                    return rpc.decode_reply(event.payload)
                if isinstance(event, SessionTerminated):
                    raise SessionTerminatedError(
                        f"the device reset while awaiting the {what}: TerminateSession "
                        f"arrived after {time.monotonic() - wait.started:.3f}s; call reconnect()"
                    )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._unusable_reason = (
                    f"the previous call timed out ({what}); a late reply could still arrive, "
                    "so call reconnect() to open a fresh session"
                )
                raise CallTimeoutError(
                    f"no {what} from {self.transport.description} within {timeout:.2f}s; "
                    f"{wait.describe()}; {self._unframer_summary()}{self._post_mortem()}"
                )
            self._receive(min(remaining, _POLL_S), wait)

    def _next_event(self, wait: _Wait) -> object | None:
        """The next session event that needs a decision; logs and ignored messages are
        recorded here and not returned. Events are taken one at a time so that whatever
        follows a SessionEstablished stays queued for the next wait."""
        while (event := self.session.next_event()) is not None:
            wait.frames += 1
            if isinstance(event, LogReceived):
                self.logs.append(event.text)
                if self._on_log is not None:
                    self._on_log(event.text)
                continue
            if isinstance(event, MessageIgnored):
                self.stats.ignored_messages += 1
                continue
            if isinstance(event, SessionTerminated):
                self.stats.terminations += 1
                if self.device is not None:
                    self.device.boot_pending = False
                self._handles.clear()
                self._unusable_reason = "terminated the session (it rebooted or was reset)"
            return event
        return None

    def _receive(self, timeout: float, wait: _Wait) -> None:
        try:
            data = self.transport.read(max(timeout, 0.0))
        except TransportClosedError as exc:
            raise TransportClosedError(f"{exc}{self._post_mortem()}") from exc
        if data:
            self.stats.bytes_received += len(data)
            wait.note(data)
            self.session.receive_data(data)

    def _write(self, data: bytes) -> None:
        try:
            self.transport.write(data)
        except TransportClosedError as exc:
            raise TransportClosedError(f"{exc}{self._post_mortem()}") from exc
        self.stats.bytes_sent += len(data)

    def _unframer_summary(self) -> str:
        stats = self.session.stats
        return f"session layer stats: {stats}"

    def _post_mortem(self) -> str:
        return f"\n{self.device.post_mortem()}" if self.device is not None else ""

    def _rpc_reset(self, kind: str) -> None:
        """In-band reset: ask the device to reset (``rpc.reset``) or to crash (``app.fatal``)
        and require it to announce its reboot with a TerminateSession within the deadline."""
        function = INBAND_RESET_FUNCTIONS[kind]
        try:
            self.call(function, timeout=self.reset_timeout)
        except SessionTerminatedError:
            return
        except CallTimeoutError as exc:
            raise TargetError(
                f"{function}: the device did not announce a reboot within "
                f"{self.reset_timeout}s ({exc})"
            ) from exc
        raise ProtocolError(f"{function} returned a value instead of resetting the device")
