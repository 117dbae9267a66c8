"""FdTransport on real pipes and ptys, and SwappableTransport across a swap."""

from __future__ import annotations

import os
import pty
import socket
import threading
import time

import pytest

from harness.errors import TransportClosedError
from harness.transport.fd import FdTransport
from harness.transport.swappable import SwappableTransport


def _pipe_pair() -> tuple[FdTransport, int, int]:
    """A transport reading from one pipe and writing to another, plus the far ends."""
    to_us_r, to_us_w = os.pipe()
    from_us_r, from_us_w = os.pipe()
    return FdTransport(to_us_r, from_us_w, name="pipes"), to_us_w, from_us_r


def test_read_returns_empty_on_deadline_not_an_error() -> None:
    transport, far_w, far_r = _pipe_pair()
    started = time.monotonic()
    assert transport.read(0.05) == b""
    assert time.monotonic() - started >= 0.04
    transport.close()
    os.close(far_w)
    os.close(far_r)


def test_binary_safe_both_ways() -> None:
    transport, far_w, far_r = _pipe_pair()
    every_byte = bytes(range(256))
    os.write(far_w, every_byte)
    received = b""
    while len(received) < 256:
        chunk = transport.read(1.0)
        assert chunk, "bytes written by the far end never arrived"
        received += chunk
    assert received == every_byte
    transport.write(every_byte)
    assert os.read(far_r, 512) == every_byte
    transport.close()
    os.close(far_w)
    os.close(far_r)


def test_far_end_closing_is_reported_as_closed() -> None:
    transport, far_w, far_r = _pipe_pair()
    os.close(far_w)
    with pytest.raises(TransportClosedError, match="end of stream"):
        transport.read(1.0)
    os.close(far_r)
    with pytest.raises(TransportClosedError):
        transport.write(b"x" * 100000)
    transport.close()


def test_socket_peer_dying_with_unread_bytes_is_reported_as_closed() -> None:
    # What the harness sees when a power reset kills QEMU while a request is unread: the
    # socket read fails with ECONNRESET, which must read as "closed" so that a swappable
    # transport can move on to the new QEMU's socket.
    ours, peer = socket.socketpair()
    transport = FdTransport(ours.fileno(), ours.fileno(), name="sock")
    transport.write(b"request the peer never reads")
    peer.close()
    with pytest.raises(TransportClosedError, match="device end gone"):
        transport.read(1.0)
    ours.close()


def test_pty_master_is_a_transport() -> None:
    master, slave = pty.openpty()
    import tty

    tty.setraw(slave)
    transport = FdTransport(master, master, name="pty")
    transport.write(b"\xff\xfd\x00\x01")
    assert os.read(slave, 16) == b"\xff\xfd\x00\x01"
    os.write(slave, b"\x00\xff")
    assert transport.read(1.0) == b"\x00\xff"
    os.close(slave)
    with pytest.raises(TransportClosedError):
        transport.read(1.0)
    transport.close()


def test_swappable_moves_a_blocked_reader_to_the_new_pipe() -> None:
    first, first_far_w, first_far_r = _pipe_pair()
    swappable = SwappableTransport(first, name="dev")
    got: list[bytes] = []

    def reader() -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not got:
            data = swappable.read(0.5)
            if data:
                got.append(data)

    thread = threading.Thread(target=reader)
    thread.start()
    old = swappable.replace(None)
    assert old is first
    os.close(first_far_w)  # the old device dies while the reader waits on it
    first.close()
    second, second_far_w, second_far_r = _pipe_pair()
    swappable.replace(second)
    os.write(second_far_w, b"new boot")
    thread.join(5)
    assert got == [b"new boot"]
    swappable.close()
    for fd in (first_far_r, second_far_w, second_far_r):
        os.close(fd)


def test_swappable_reports_a_real_death_at_once() -> None:
    first, far_w, far_r = _pipe_pair()
    swappable = SwappableTransport(first)
    os.close(far_w)
    started = time.monotonic()
    with pytest.raises(TransportClosedError):
        swappable.read(5.0)
    assert time.monotonic() - started < 1.0, "a dead device must not wait out the deadline"
    swappable.close()
    os.close(far_r)
