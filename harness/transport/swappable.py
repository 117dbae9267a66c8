"""A transport whose underlying pipe can be replaced while a client keeps using it.

A power reset of a host process or of QEMU gives new pipes or ptys. The client, and any
call in flight on another thread, should not notice anything but what the device itself
says (the wake-up TerminateSession), so the target swaps the pipe underneath this object.
"""

from __future__ import annotations

import threading
import time
from typing import Literal, Protocol

from harness.errors import TransportClosedError, TransportError
from harness.transport.base import Transport

# A write issued while a reset has the pipe detached waits this long for the new one.
_ATTACH_WAIT_FOR_WRITE_S = 10.0


class WireObserver(Protocol):
    """Sees every byte that crosses the transport, and its life events (a wire trace)."""

    def record(self, direction: Literal["tx", "rx"], data: bytes) -> None:
        """``direction`` is ``tx`` (written to the device) or ``rx`` (read from it)."""

    def note(self, kind: str, text: str) -> None:
        """A transport event; ``kind`` is ``transport`` here."""


class SwappableTransport(Transport):
    """Forwards to a current transport; a read that hits a replaced pipe moves to the new one.

    It is also the one place every byte to and from a device passes, whichever client, test
    helper or wrapper (a fault injector) is on top and whichever pipe is underneath, so an
    ``observer`` given here sees the real wire: what was handed to the device's pipe and
    what came out of it. Written bytes are reported before the write, so a reply read on
    another thread can never appear in the record before the request that caused it.
    """

    def __init__(
        self,
        initial: Transport | None = None,
        *,
        name: str = "device",
        observer: WireObserver | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._current = initial
        self._name = name
        self._closed = False
        self._swapped = threading.Condition(self._lock)
        self._observer = observer

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
        if self._observer is not None:
            if old is not None:
                self._observer.note("transport", f"detached {old.description}")
            if new is not None:
                self._observer.note("transport", f"attached {new.description}")
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
        if self._observer is None:
            current.write(data)
            return
        self._observer.record("tx", data)
        try:
            current.write(data)
        except TransportError as exc:
            self._observer.note("transport", f"write of {len(data)} bytes failed: {exc}")
            raise

    def read(self, timeout: float) -> bytes:
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            current = self._get(deadline)
            if current is None:
                return b""
            try:
                data = current.read(max(deadline - time.monotonic(), 0.0))
            except TransportClosedError as exc:
                with self._lock:
                    replaced = self._current is not current
                if not replaced:
                    if self._observer is not None:
                        self._observer.note("transport", f"read failed: {exc}")
                    raise
                # A reset detached or replaced the pipe under us: go on with the new one.
                continue
            if data and self._observer is not None:
                self._observer.record("rx", data)
            return data

    def close(self) -> None:
        with self._lock:
            was_closed, self._closed = self._closed, True
            current, self._current = self._current, None
            self._swapped.notify_all()
        if current is not None:
            current.close()
        if self._observer is not None and not was_closed:
            self._observer.note("transport", "closed")
