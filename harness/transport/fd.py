"""A transport over a pair of file descriptors (a child's pipes, a pty master, a socket)."""

from __future__ import annotations

import contextlib
import errno
import os
import select
import time

from harness.errors import TransportClosedError, TransportError
from harness.transport.base import Transport

_READ_CHUNK = 65536


class FdTransport(Transport):
    """Non-blocking reads with ``select`` deadlines and complete writes on raw descriptors.

    Raw ``os.read``/``os.write`` rather than Python file objects: no hidden buffering can
    hold back a byte the device sent, and a read never blocks past its deadline.
    """

    def __init__(
        self, read_fd: int, write_fd: int, *, name: str = "fd", owns_fds: bool = True
    ) -> None:
        self._read_fd = read_fd
        self._write_fd = write_fd
        self._name = name
        self._owns_fds = owns_fds
        self._closed = False

    @property
    def description(self) -> str:
        return self._name

    def write(self, data: bytes) -> None:
        if self._closed:
            raise TransportClosedError(f"{self._name}: write after close")
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._write_fd, view)
            except BlockingIOError:
                select.select([], [self._write_fd], [], 1.0)
                continue
            except (BrokenPipeError, ConnectionResetError) as exc:
                raise TransportClosedError(
                    f"{self._name}: the device end closed while writing ({exc})"
                ) from exc
            except OSError as exc:
                if exc.errno == errno.EIO:  # pty whose slave side is gone
                    raise TransportClosedError(f"{self._name}: device end gone ({exc})") from exc
                raise TransportError(f"{self._name}: write failed: {exc}") from exc
            view = view[written:]

    def read(self, timeout: float) -> bytes:
        if self._closed:
            raise TransportClosedError(f"{self._name}: read after close")
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            remaining = max(deadline - time.monotonic(), 0.0)
            try:
                ready, _, _ = select.select([self._read_fd], [], [], remaining)
            except InterruptedError:
                continue
            except (OSError, ValueError) as exc:
                # The descriptor was closed under us (a reset replaced the pipe): that is
                # the far end going away, not an I/O fault.
                raise TransportClosedError(f"{self._name}: closed while reading ({exc})") from exc
            if not ready:
                return b""
            try:
                data = os.read(self._read_fd, _READ_CHUNK)
            except BlockingIOError:
                continue
            except OSError as exc:
                # EIO: a pty whose other side is gone; EBADF: closed under us; ECONNRESET: a
                # socket whose peer died with bytes unread (QEMU killed by a power reset).
                if exc.errno in (errno.EIO, errno.EBADF, errno.ECONNRESET):
                    raise TransportClosedError(f"{self._name}: device end gone ({exc})") from exc
                raise TransportError(f"{self._name}: read failed: {exc}") from exc
            if not data:
                raise TransportClosedError(f"{self._name}: end of stream (the device side closed)")
            return data

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_fds:
            for fd in {self._read_fd, self._write_fd}:
                with contextlib.suppress(OSError):
                    os.close(fd)
