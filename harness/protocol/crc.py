"""CRC-16/CCITT-FALSE, the checksum of every frame (docs/protocol.md 1.2).

``binascii.crc_hqx`` already implements exactly this polynomial (0x1021, not reflected, no final
xor) in C; wrapping it keeps the one place that knows the initial value 0xFFFF, and lets the
unframer checksum a whole packet with a single C call instead of a Python loop.
"""

from __future__ import annotations

import binascii

CRC16_INIT = 0xFFFF
"""Initial value of CRC-16/CCITT-FALSE; pass a previous result as ``crc`` to continue a CRC."""


def crc16(data: bytes | bytearray | memoryview, crc: int = CRC16_INIT) -> int:
    """Return the CRC-16/CCITT-FALSE of ``data``, continuing from ``crc``.

    The check value of ``b"123456789"`` is ``0x29B1``.
    """
    return binascii.crc_hqx(data, crc)
