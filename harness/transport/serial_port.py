"""A transport over a serial port, through pyserial, so real UARTs and network serial work.

``serial.serial_for_url`` opens a device path as well as ``rfc2217://`` and ``socket://``
URLs (a lab's network serial), so one class serves a board on the desk and one in a farm.
The port is locked exclusively by default (two harnesses on one board corrupt each other's
frames in ways that look like firmware bugs), and input that was waiting before we opened
it is flushed: it belongs to an earlier boot or an earlier user, not to this session.
"""

from __future__ import annotations

import contextlib
import select
import time

import serial

from harness.errors import TransportClosedError, TransportError
from harness.transport.base import Transport

_READ_CHUNK = 65536
# pyserial's own read timeout where there is no descriptor to select on (network URLs).
_POLL_SLICE_S = 0.05


def open_serial(
    url: str, *, baud: int, exclusive: bool = True, released_lines: tuple[str, ...] = ()
) -> serial.SerialBase:
    """Open ``url`` raw (8N1, no flow control) or raise TransportError naming it and why.

    ``released_lines`` ("dtr", "rts") are set inactive before the port opens: pyserial
    asserts both by default, which on a board that wires one to its reset pin holds the board
    in reset for as long as the port is open.
    """
    try:
        port = serial.serial_for_url(url, do_not_open=True)
        port.baudrate = baud
        for line in released_lines:
            setattr(port, line, False)
        port.timeout = 0
        # A write must not hang on a stalled line. pyserial's RFC 2217 class refuses the
        # setting when it opens (NotImplementedError), so a network port relies on TCP.
        if not url.startswith("rfc2217://"):
            port.write_timeout = 10.0
        if exclusive and hasattr(port, "exclusive"):
            port.exclusive = True
        port.open()
    except serial.SerialException as exc:
        text = str(exc)
        if "exclusively lock" in text or "Resource temporarily unavailable" in text:
            raise TransportError(
                f"serial port {url} is in use by another process (it is locked exclusively); "
                "close the other terminal or harness, or find it with: fuser -v " + url
            ) from exc
        raise TransportError(f"cannot open serial port {url}: {text}") from exc
    except (ValueError, OSError) as exc:
        raise TransportError(f"cannot open serial port {url}: {exc}") from exc
    port.reset_input_buffer()
    return port


class SerialTransport(Transport):
    """Raw bytes over a pyserial port with deadline-bound reads.

    Where the port has a file descriptor (a tty, a pty) reads wait in ``select``; network
    URLs have none, so reads there use short pyserial timeouts until the deadline. A port
    that vanishes (USB unplugged, the pty's other end closed) raises TransportClosedError.
    """

    def __init__(
        self,
        url: str,
        *,
        baud: int = 115200,
        exclusive: bool = True,
        released_lines: tuple[str, ...] = (),
    ) -> None:
        self._url = url
        self._port = open_serial(url, baud=baud, exclusive=exclusive, released_lines=released_lines)
        self._closed = False
        try:
            self._fd: int | None = self._port.fileno()
        except (AttributeError, NotImplementedError, serial.SerialException, OSError):
            self._fd = None

    @property
    def description(self) -> str:
        return f"serial {self._url}"

    @property
    def port(self) -> serial.SerialBase:
        """The pyserial object, for modem lines (a DTR/RTS reset pulse)."""
        return self._port

    def write(self, data: bytes) -> None:
        if self._closed:
            raise TransportClosedError(f"{self.description}: write after close")
        try:
            self._port.write(data)
            self._port.flush()
        except serial.SerialTimeoutException as exc:
            raise TransportError(f"{self.description}: write timed out ({exc})") from exc
        except (serial.SerialException, OSError) as exc:
            raise TransportClosedError(
                f"{self.description}: port gone while writing ({exc})"
            ) from exc

    def read(self, timeout: float) -> bytes:
        if self._closed:
            raise TransportClosedError(f"{self.description}: read after close")
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            remaining = max(deadline - time.monotonic(), 0.0)
            if self._fd is not None:
                try:
                    ready, _, _ = select.select([self._fd], [], [], remaining)
                except InterruptedError:
                    continue
                except (OSError, ValueError) as exc:
                    raise TransportClosedError(
                        f"{self.description}: closed while reading ({exc})"
                    ) from exc
                if not ready:
                    return b""
                data = self._read_now(_READ_CHUNK)
                if data:
                    return data
                # pyserial reports a readable descriptor with no data as a disconnect.
                raise TransportClosedError(f"{self.description}: the port went away")
            data = self._read_some(min(remaining, _POLL_SLICE_S))
            if data or time.monotonic() >= deadline:
                return data

    def _read_now(self, size: int) -> bytes:
        try:
            return self._port.read(size)
        except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
            # SerialException "device reports readiness to read but returned no data":
            # the tty hung up (USB unplugged, the pty master closed).
            raise TransportClosedError(f"{self.description}: the port went away ({exc})") from exc

    def _read_some(self, wait: float) -> bytes:
        try:
            self._port.timeout = wait
            first = self._port.read(1)
            if not first:
                return b""
            self._port.timeout = 0
            return first + self._port.read(_READ_CHUNK)
        except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
            raise TransportClosedError(f"{self.description}: the port went away ({exc})") from exc

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # A port that vanished cannot be closed cleanly, and need not be.
        with contextlib.suppress(serial.SerialException, OSError):
            self._port.close()
