"""Client behaviour that needs no device: deadlines, typed errors, state checks.

Real pipes stand in for a silent or vanished device; everything that needs a device that
answers is in tests/device/.
"""

from __future__ import annotations

import contextlib
import os
import time

import pytest

from harness.client import Client
from harness.errors import HandshakeTimeoutError, SessionStateError, TransportClosedError
from harness.protocol.framing import Unframer
from harness.protocol.session import MessageType, decode_message
from harness.transport.fd import FdTransport


@pytest.fixture
def silent_device():
    """A transport whose far end reads nothing back and says nothing."""
    to_host_r, to_host_w = os.pipe()
    to_device_r, to_device_w = os.pipe()
    transport = FdTransport(to_host_r, to_device_w, name="silent pipe")
    yield transport, to_host_w, to_device_r
    transport.close()
    for fd in (to_host_w, to_device_r):
        with contextlib.suppress(OSError):
            os.close(fd)


def test_handshake_timeout_says_what_was_awaited_and_seen(silent_device) -> None:
    transport, _, to_device_r = silent_device
    client = Client(transport, handshake_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(HandshakeTimeoutError) as caught:
        client.handshake()
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 2.0
    message = str(caught.value)
    assert "no StartSessionReply" in message and "0.30s" in message
    assert "nothing at all was received" in message
    # What went out was exactly one framed StartSessionInit, version 1.
    (payload,) = Unframer().feed(os.read(to_device_r, 4096))
    session_id, msg_type, body = decode_message(payload)
    assert msg_type is MessageType.START_SESSION_INIT
    assert body == b"\x01" and 1 <= session_id <= 255


def test_handshake_timeout_reports_garbage_it_saw(silent_device) -> None:
    transport, to_host_w, _ = silent_device
    os.write(to_host_w, b"garbage \xff\xfd\x01")
    client = Client(transport, handshake_timeout=0.2)
    with pytest.raises(HandshakeTimeoutError, match=r"received 11 bytes.*67 61 72"):
        client.handshake()


def test_periodic_init_resend_is_counted(silent_device) -> None:
    transport, _, _ = silent_device
    client = Client(transport, handshake_timeout=0.35, handshake_retry_interval=0.1)
    with pytest.raises(HandshakeTimeoutError):
        client.handshake()
    assert client.stats.init_sent >= 3


def test_call_before_handshake_is_a_state_error(silent_device) -> None:
    transport, _, _ = silent_device
    with pytest.raises(SessionStateError, match="handshake"):
        Client(transport).call("rpc.add", 1, 2)


def test_vanished_device_is_transport_closed_not_a_timeout(silent_device) -> None:
    transport, to_host_w, _ = silent_device
    os.close(to_host_w)
    started = time.monotonic()
    with pytest.raises(TransportClosedError):
        Client(transport, handshake_timeout=5).handshake()
    assert time.monotonic() - started < 1.0
