"""SerialTransport on real ptys and a real TCP socket: the pyserial path the boards use."""

from __future__ import annotations

import contextlib
import os
import pty
import socket
import threading
import time
import tty
from collections.abc import Iterator

import pytest

from harness.errors import TransportClosedError, TransportError
from harness.transport.serial_port import SerialTransport

ALL_BYTES = bytes(range(256)) * 4


class Pty:
    """A pty whose master plays the device; ``path`` is the port a harness opens."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)

    def read_exactly(self, count: int, timeout: float = 5.0) -> bytes:
        data = b""
        deadline = time.monotonic() + timeout
        while len(data) < count and time.monotonic() < deadline:
            data += os.read(self.master, count - len(data))
        return data

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def line() -> Iterator[Pty]:
    made = Pty()
    yield made
    made.close()


def read_exactly(transport: SerialTransport, count: int, timeout: float = 5.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while len(data) < count and time.monotonic() < deadline:
        data += transport.read(deadline - time.monotonic())
    return data


def test_every_byte_value_crosses_both_ways(line: Pty) -> None:
    with SerialTransport(line.path) as port:
        os.write(line.master, ALL_BYTES)
        assert read_exactly(port, len(ALL_BYTES)) == ALL_BYTES
        port.write(ALL_BYTES)
        assert line.read_exactly(len(ALL_BYTES)) == ALL_BYTES


def test_a_quiet_port_returns_nothing_at_the_deadline(line: Pty) -> None:
    with SerialTransport(line.path) as port:
        started = time.monotonic()
        assert port.read(0.2) == b""
        elapsed = time.monotonic() - started
    assert 0.19 <= elapsed < 1.0


def test_input_waiting_before_the_open_is_flushed(line: Pty) -> None:
    os.write(line.master, b"stale bytes of an earlier boot")
    with SerialTransport(line.path) as port:
        assert port.read(0.1) == b""
        os.write(line.master, b"fresh")
        assert read_exactly(port, 5) == b"fresh"


def test_a_second_opener_is_refused_naming_the_port(line: Pty) -> None:
    with (
        SerialTransport(line.path),
        pytest.raises(TransportError, match=rf"{line.path} is in use by another process"),
    ):
        SerialTransport(line.path)


def test_a_second_opener_may_share_when_not_exclusive(line: Pty) -> None:
    with SerialTransport(line.path, exclusive=False), SerialTransport(line.path, exclusive=False):
        pass


def test_a_port_that_vanishes_is_closed_not_quiet(line: Pty) -> None:
    port = SerialTransport(line.path)
    try:
        os.close(line.slave)
        os.close(line.master)  # the pty's device end is gone, as an unplugged USB adapter
        with pytest.raises(TransportClosedError, match="went away"):
            port.read(2.0)
    finally:
        port.close()


def test_a_missing_port_is_named(tmp_path) -> None:
    missing = tmp_path / "ttyACM9"
    with pytest.raises(TransportError, match=rf"cannot open serial port {missing}"):
        SerialTransport(str(missing))


def test_close_is_idempotent_and_final(line: Pty) -> None:
    port = SerialTransport(line.path)
    port.close()
    port.close()
    with pytest.raises(TransportClosedError):
        port.read(0.1)
    with pytest.raises(TransportClosedError):
        port.write(b"x")


def test_a_socket_url_works_like_a_port() -> None:
    """socket:// (a lab's network serial) has no descriptor pyserial exposes: reads poll."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    acceptor = threading.Thread(target=lambda: accepted.append(server.accept()[0]))
    acceptor.start()
    port = SerialTransport(f"socket://127.0.0.1:{server.getsockname()[1]}")
    try:
        acceptor.join(5.0)
        peer = accepted[0]
        peer.sendall(ALL_BYTES)
        assert read_exactly(port, len(ALL_BYTES)) == ALL_BYTES
        port.write(b"\x00\xff\xfe")
        assert peer.recv(3) == b"\x00\xff\xfe"
        started = time.monotonic()
        assert port.read(0.2) == b""
        assert time.monotonic() - started < 1.0
        peer.close()
    finally:
        port.close()
        server.close()


def test_an_rfc2217_url_gets_as_far_as_connecting() -> None:
    """pyserial's RFC 2217 class refuses write_timeout; the open must not stop there."""
    closed = socket.create_server(("127.0.0.1", 0))
    port_number = closed.getsockname()[1]
    closed.close()
    with pytest.raises(TransportError, match=rf"rfc2217://127.0.0.1:{port_number}.*refused"):
        SerialTransport(f"rfc2217://127.0.0.1:{port_number}")
