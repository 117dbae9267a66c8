"""Byte pipes to a device: every transport moves raw bytes and owns its deadlines."""

from harness.transport.base import Transport
from harness.transport.fd import FdTransport
from harness.transport.swappable import SwappableTransport

__all__ = ["FdTransport", "SwappableTransport", "Transport"]
