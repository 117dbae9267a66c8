"""The one interface every byte pipe to a device implements.

The protocol core is sans-IO, so everything that touches the outside world funnels through
this small surface: write bytes, read what has arrived within a deadline, close. Keeping it
this small is what lets a pty, a socket, a serial port, a child's pipes and a fault-injecting
wrapper stand in for one another.
"""

from __future__ import annotations

import abc


class Transport(abc.ABC):
    """A bidirectional, binary-safe byte stream."""

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Send every byte of ``data`` or raise :class:`~harness.errors.TransportError`."""

    @abc.abstractmethod
    def read(self, timeout: float) -> bytes:
        """Return the bytes available now, waiting at most ``timeout`` seconds for the first one.

        Returns ``b""`` when the deadline passes with nothing received, and raises
        :class:`~harness.errors.TransportClosedError` when the other end has gone away, so a
        caller can always tell "quiet" from "dead".
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release the underlying resource; safe to call twice."""

    @property
    def description(self) -> str:
        """A short human-readable name used in error messages."""
        return type(self).__name__

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
