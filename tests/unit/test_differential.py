"""Differential tests: the C unframer/framer (ctypes) against the Python ones, same inputs.

Hypothesis builds streams of valid packets, corrupts them (bit flips, dropped and inserted bytes,
stray FF, FF FD and FF FE) and cuts them into random chunks; both receivers must deliver the same
payloads and count the same drops, and both framers must produce the same wire bytes. Where they
differ, docs/protocol.md decides which one is wrong.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit import c_library as c

try:
    from harness.protocol import framing
except Exception as exc:  # not written yet, or the package is half-imported: not our failure
    pytest.skip(f"harness.protocol.framing is not importable: {exc!r}", allow_module_level=True)

COUNTERS = ("delivered", "bad_crc", "too_long", "invalid_escape", "interrupted")
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Bytes that matter to the framing, over-represented so escapes and starts are common.
_special = st.sampled_from([0xFF, 0xFE, 0xFD, 0x00])
_byte = st.one_of(_special, st.integers(0, 255))
payloads = st.lists(_byte, max_size=80).map(bytes)


@st.composite
def corrupted_streams(draw: st.DrawFn) -> tuple[bytes, int]:
    """(stream, max_payload): a few packets, then a few corruptions."""
    max_payload = draw(st.sampled_from([0, 3, 16, 64, 2048]))
    packets = draw(st.lists(payloads, min_size=1, max_size=6))
    stream = bytearray()
    for index, payload in enumerate(packets):
        stream += framing.encode_packet(payload, nop=index == 0)
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(
            st.sampled_from(["flip", "drop", "insert", "ff", "start", "nop", "noise", "len"])
        )
        at = draw(st.integers(0, len(stream)))
        if kind == "flip" and at < len(stream):
            stream[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "drop" and at < len(stream):
            del stream[at]
        elif kind == "insert":
            stream[at:at] = bytes([draw(st.integers(0, 255))])
        elif kind == "ff":
            stream[at:at] = b"\xff"
        elif kind == "start":
            stream[at:at] = b"\xff\xfd"
        elif kind == "nop":
            stream[at:at] = b"\xff\xfe"
        elif kind == "noise":
            stream[at:at] = draw(st.lists(_byte, max_size=8).map(bytes))
        elif kind == "len":
            # A packet start with a huge declared length, as a corrupted length would give.
            stream[at:at] = b"\xff\xfd" + draw(st.binary(min_size=4, max_size=4))
    return bytes(stream), max_payload


@st.composite
def chunkings(draw: st.DrawFn, data: bytes) -> list[bytes]:
    if not data:
        return [data]
    cuts = sorted(set(draw(st.lists(st.integers(1, len(data)), max_size=12))))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def _python(chunks: list[bytes], max_payload: int) -> tuple[list[bytes], dict[str, int]]:
    unframer = framing.Unframer(max_payload=max_payload)
    out: list[bytes] = []
    for chunk in chunks:
        out.extend(unframer.feed(chunk))
    return out, {name: getattr(unframer.stats, name) for name in COUNTERS}


def _c(chunks: list[bytes], max_payload: int) -> tuple[list[bytes], dict[str, int]]:
    payloads, stats = c.unframe_chunks(max_payload, chunks)
    return payloads, {name: stats[name] for name in COUNTERS}


@SETTINGS
@given(case=corrupted_streams(), data=st.data())
def test_c_and_python_unframers_agree(case: tuple[bytes, int], data: st.DataObject) -> None:
    stream, max_payload = case
    chunks = data.draw(chunkings(stream))
    python = _python(chunks, max_payload)
    assert _c(chunks, max_payload) == python, f"stream {stream.hex()} max {max_payload}"
    # And neither depends on the chunking.
    assert _python([stream], max_payload) == python


@SETTINGS
@given(stream=st.lists(_byte, max_size=200).map(bytes), data=st.data())
def test_unframers_agree_on_line_noise(stream: bytes, data: st.DataObject) -> None:
    chunks = data.draw(chunkings(stream))
    for max_payload in (4, 2048):
        assert _c(chunks, max_payload) == _python(chunks, max_payload)


@SETTINGS
@given(payload=st.lists(_byte, max_size=600).map(bytes), nop=st.booleans())
def test_c_and_python_framers_agree(payload: bytes, nop: bool) -> None:
    wire = framing.encode_packet(payload, nop=nop)
    assert c.frame(payload, nop=nop) == wire
    assert c.frame(payload, nop=nop, chunk=7) == wire
    # Each side decodes the other's bytes.
    assert _c([wire], len(payload))[0] == [payload]
    assert _python([c.frame(payload, nop=nop)], len(payload))[0] == [payload]


@SETTINGS
@given(data=st.lists(_byte, max_size=300).map(bytes))
def test_c_and_python_crc_agree(data: bytes) -> None:
    from harness.protocol.crc import crc16

    assert c.crc16(data) == crc16(data)
