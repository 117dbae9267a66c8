"""A transport whose underlying pipe can be replaced while a client keeps using it.

A power reset of a host process or of QEMU gives new pipes or ptys. The client, and any
call in flight on another thread, should not notice anything but what the device itself
says (the wake-up TerminateSession), so the target swaps the pipe underneath this object.
"""

from __future__ import annotations

import threading
import time

from harness.errors import TransportClosedError
from harness.transport.base import Transport

# A write issued while a reset has the pipe detached waits this long for the new one.
_ATTACH_WAIT_FOR_WRITE_S = 10.0


class SwappableTransport(Transport):
    """Forwards to a current transport; a read that hits a replaced pipe moves to the new one."""

    def __init__(self, initial: Transport | None = None, *, name: str = "device") -> None:
        self._lock = threading.Lock()
        self._current = initial
        self._name = name
        self._closed = False
        self._swapped = threading.Condition(self._lock)

    @property
    def description(self) -> str:
        with self._lock:
            inner = self._current.description if self._current else "detached"
        return f"{self._name} ({inner})"

    def replace(self, new: Transport | None) -> Transport | None:
        """Install ``new`` and return the old transport, not closed.

        A target that power-cycles the device first calls ``replace(None)`` (reads and writes
        then wait, within their own deadlines, for the new pipe), kills the old process, then
        installs the new pipe. A pipe that closes while still installed is a real failure and
        is reported at once.
        """
        with self._lock:
            old, self._current = self._current, new
            self._swapped.notify_all()
        return old

    def _get(self, deadline: float) -> Transport | None:
        with self._lock:
            while self._current is None and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._swapped.wait(remaining)
            if self._closed:
                raise TransportClosedError(f"{self._name}: closed")
            return self._current

    def write(self, data: bytes) -> None:
        current = self._get(time.monotonic() + _ATTACH_WAIT_FOR_WRITE_S)
        if current is None:
            raise TransportClosedError(f"{self._name}: no device attached (it is being reset)")
        current.write(data)

    def read(self, timeout: float) -> bytes:
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            current = self._get(deadline)
            if current is None:
                return b""
            try:
                return current.read(max(deadline - time.monotonic(), 0.0))
            except TransportClosedError:
                with self._lock:
                    replaced = self._current is not current
                if not replaced:
                    raise
                # A reset detached or replaced the pipe under us: go on with the new one.

    def close(self) -> None:
        with self._lock:
            self._closed = True
            current, self._current = self._current, None
            self._swapped.notify_all()
        if current is not None:
            current.close()
