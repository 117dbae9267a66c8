"""CRC-16/CCITT-FALSE: the check value, chaining, and agreement with a bitwise definition."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from harness.protocol.crc import CRC16_INIT, crc16


def bitwise_crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """The textbook definition, one bit at a time: poly 0x1021, no reflection, no xor out."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc


def test_check_value() -> None:
    assert crc16(b"123456789") == 0x29B1


def test_empty_is_initial_value() -> None:
    assert crc16(b"") == CRC16_INIT == 0xFFFF


def test_spec_example() -> None:
    assert crc16(bytes.fromhex("fffd0200000001ffff")) == 0xC57A


def test_accepts_bytearray_and_memoryview() -> None:
    data = b"\x00\xff\x10"
    assert crc16(bytearray(data)) == crc16(memoryview(data)) == crc16(data)


@given(st.binary(max_size=200))
def test_matches_bitwise_definition(data: bytes) -> None:
    assert crc16(data) == bitwise_crc16(data)


@given(st.binary(max_size=100), st.binary(max_size=100))
def test_chaining_equals_one_pass(first: bytes, second: bytes) -> None:
    assert crc16(second, crc16(first)) == crc16(first + second)
