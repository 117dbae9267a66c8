"""Framing: encoder, Framer, and the Unframer against an obviously-correct reference.

The fast Unframer is clever (bulk C calls, two paths, parking), so most tests here compare it
with ``ReferenceUnframer``, a byte-at-a-time transcription of docs/protocol.md 1.3 that is too
slow for production but easy to check by eye. Random streams mix good packets, corrupted ones,
no-ops, stray escapes and noise, and are fed in random chunkings: both receivers must return the
same payloads and the same drop counts. Comparing with a reference (rather than with the list
of payloads sent) keeps the test meaningful even though CRC-16 can in theory accept a corrupted
packet: the reference accepts exactly the same ones.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import FramingError
from harness.protocol.crc import crc16
from harness.protocol.framing import Framer, Unframer, UnframerStats, encode_packet, escape

STAT_FIELDS = ("delivered", "bad_crc", "too_long", "invalid_escape", "interrupted")


class ReferenceUnframer:
    """docs/protocol.md 1.3, one byte at a time, no cleverness."""

    def __init__(self, max_payload: int) -> None:
        self.max_payload = max_payload
        self.counts = dict.fromkeys(STAT_FIELDS, 0)
        self.in_packet = False
        self.previous_was_ff = False  # while hunting

    def _start(self) -> None:
        self.in_packet = True
        self.raw = bytearray(b"\xff\xfd")  # wire bytes since the packet start
        self.escape_pending = False
        self.field = "length"
        self.data = bytearray()  # data bytes of the current field
        self.crc_end = 0
        self.length = 0
        self.payload = b""

    def _hunt(self) -> None:
        self.in_packet = False
        self.previous_was_ff = False

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        for byte in data:
            self._byte(byte, out)
        return out

    def _byte(self, byte: int, out: list[bytes]) -> None:
        if not self.in_packet:
            if self.previous_was_ff and byte == 0xFD:
                self._start()
            else:
                self.previous_was_ff = byte == 0xFF
            return
        self.raw.append(byte)
        if self.escape_pending:
            self.escape_pending = False
            if byte == 0xFF:
                self._data(0xFF, out)
            elif byte == 0xFE:
                pass  # no-op
            elif byte == 0xFD:
                self.counts["interrupted"] += 1
                self._start()
            else:
                self.counts["invalid_escape"] += 1
                self._hunt()
        elif byte == 0xFF:
            self.escape_pending = True
        else:
            self._data(byte, out)

    def _data(self, byte: int, out: list[bytes]) -> None:
        self.data.append(byte)
        if self.field == "length" and len(self.data) == 4:
            self.length = int.from_bytes(self.data, "little")
            if self.length > self.max_payload:
                self.counts["too_long"] += 1
                self._hunt()
                return
            self.field = "payload"
            self.data = bytearray()
            if self.length == 0:
                self._payload_done()
        elif self.field == "payload" and len(self.data) == self.length:
            self._payload_done()
        elif self.field == "crc" and len(self.data) == 2:
            if int.from_bytes(self.data, "little") == crc16(bytes(self.raw[: self.crc_end])):
                self.counts["delivered"] += 1
                out.append(self.payload)
            else:
                self.counts["bad_crc"] += 1
            self._hunt()

    def _payload_done(self) -> None:
        self.crc_end = len(self.raw)
        self.payload = bytes(self.data)
        self.field = "crc"
        self.data = bytearray()


def counts(stats: UnframerStats) -> dict[str, int]:
    return {name: getattr(stats, name) for name in STAT_FIELDS}


def feed_chunks(unframer: Unframer | ReferenceUnframer, data: bytes, cuts: list[int]) -> list:
    out: list[bytes] = []
    previous = 0
    for cut in [*sorted(cuts), len(data)]:
        out += unframer.feed(data[previous:cut])
        previous = cut
    return out


# --- encoder ---------------------------------------------------------------------------------


def test_spec_example() -> None:
    wire = encode_packet(b"\x01\xff", nop=True)
    assert wire == bytes.fromhex("fefffd0200000001ffff7ac5")
    assert crc16(bytes.fromhex("fffd0200000001ffff")) == 0xC57A


def test_empty_payload_crc_covers_header_only() -> None:
    wire = encode_packet(b"")
    assert wire[:6] == bytes.fromhex("fffd00000000")
    assert int.from_bytes(wire[6:], "little") == crc16(wire[:6])


def test_length_and_crc_are_escaped() -> None:
    wire = encode_packet(bytes(255))
    assert wire[:7] == bytes.fromhex("fffdffff000000")
    assert Unframer().feed(wire) == [bytes(255)]


def test_too_large_payload_is_a_framing_error() -> None:
    class Huge(bytes):
        def __len__(self) -> int:
            return 1 << 32

    with pytest.raises(FramingError, match="u32"):
        encode_packet(Huge())


def test_framer_sends_fe_only_first_and_after_reset() -> None:
    framer = Framer()
    assert framer.need_nop
    first = framer.encode(b"a")
    second = framer.encode(b"a")
    assert first == b"\xfe" + second
    assert not framer.need_nop
    framer.reset()
    assert framer.encode(b"a") == first


def test_fe_turns_a_stray_ff_into_a_noop() -> None:
    # Without the FE, the stray FF would pair with our FF and hide the packet start.
    line = b"\xff" + Framer().encode(b"hello")
    assert Unframer().feed(line) == [b"hello"]
    assert Unframer().feed(b"\xff" + encode_packet(b"hello")) == [b"hello"]  # FF FF FD: ok too


# --- unframer: targeted cases ------------------------------------------------------------------


def test_every_chunking_of_simple_stream() -> None:
    payloads = [b"", b"\xff" * 5, b"\xfd\xfe\xff\x00", bytes(range(256))]
    wire = b"noise" + b"".join(encode_packet(p, nop=True) for p in payloads) + b"tail\xff"
    for split in range(len(wire) + 1):
        assert feed_chunks(Unframer(), wire, [split]) == payloads


def test_byte_at_a_time() -> None:
    payloads = [random.Random(n).randbytes(n * 37) for n in range(20)]
    wire = b"".join(encode_packet(p) for p in payloads)
    unframer = Unframer()
    out: list[bytes] = []
    for byte in wire:
        out += unframer.feed(bytes([byte]))
    assert out == payloads
    assert unframer.stats.delivered == len(payloads)
    assert not unframer.pending


def test_drop_reasons() -> None:
    good = encode_packet(b"good")
    bad_crc = bytearray(encode_packet(b"abcd"))
    bad_crc[-1] ^= 1
    stream = (
        bytes(bad_crc)
        + good
        + bytes.fromhex("fffd05000000ff01")  # invalid escape in the payload
        + good
        + bytes.fromhex("fffd010000")  # interrupted in the length by the next packet
        + good
        + bytes.fromhex("fffd00100000")  # too long for max_payload=16
        + good
    )
    unframer = Unframer(max_payload=16)
    assert unframer.feed(stream) == [b"good"] * 4
    assert counts(unframer.stats) == {
        "delivered": 4,
        "bad_crc": 1,
        "too_long": 1,
        "invalid_escape": 1,
        "interrupted": 1,
    }
    assert unframer.stats.dropped == 4


def test_too_long_is_dropped_without_reading_further() -> None:
    # The declared length (0x01000000) is over the limit: the bytes after it are hunted, so the
    # packet that follows at once is delivered even with no FE and no gap.
    unframer = Unframer(max_payload=2048)
    assert unframer.feed(bytes.fromhex("fffd00000001") + encode_packet(b"x")) == [b"x"]
    assert unframer.stats.too_long == 1


def test_large_but_allowed_bogus_length_does_not_hold_the_next_packet() -> None:
    unframer = Unframer(max_payload=65536)
    assert unframer.feed(bytes.fromhex("fffd00f00000") + b"abc") == []
    assert unframer.pending
    # The next packet arrives in small pieces; it must come out as soon as it is complete.
    wire = encode_packet(b"next")
    assert unframer.feed(wire[:5]) == []
    assert unframer.feed(wire[5:]) == [b"next"]
    assert unframer.stats.interrupted == 1


def test_noop_inside_payload_is_part_of_crc() -> None:
    body = bytes.fromhex("fffd03000000") + b"a\xff\xfeb" + b"c"
    wire = body + crc16(body).to_bytes(2, "little")
    assert Unframer().feed(wire) == [b"abc"]
    # A CRC computed without the no-op does not match.
    plain = bytes.fromhex("fffd03000000") + b"abc"
    wrong = body + crc16(plain).to_bytes(2, "little")
    unframer = Unframer()
    assert unframer.feed(wrong) == []
    assert unframer.stats.bad_crc == 1


def test_noop_after_payload_is_not_part_of_crc() -> None:
    body = bytes.fromhex("fffd02000000") + b"ab"
    wire = body + b"\xff\xfe" + crc16(body).to_bytes(2, "little")
    assert Unframer().feed(wire) == [b"ab"]


def test_stream_ending_mid_packet_is_pending_not_dropped() -> None:
    wire = encode_packet(b"hello world")
    unframer = Unframer()
    assert unframer.feed(wire[:-1]) == []
    assert unframer.pending
    assert unframer.stats.dropped == 0
    assert unframer.feed(wire[-1:]) == [b"hello world"]


def test_reset_forgets_partial_packet() -> None:
    wire = encode_packet(b"hello")
    unframer = Unframer()
    unframer.feed(wire[:6])
    unframer.reset()
    assert unframer.feed(wire[6:]) == []
    assert unframer.feed(wire) == [b"hello"]


def test_skipped_bytes_counts_noise() -> None:
    unframer = Unframer()
    unframer.feed(b"boot banner\r\n" + encode_packet(b"x", nop=True))
    assert unframer.stats.skipped_bytes == len(b"boot banner\r\n") + 1


def test_negative_max_payload_rejected() -> None:
    with pytest.raises(ValueError, match="max_payload"):
        Unframer(max_payload=-1)


# --- unframer: fast-path edge cases -------------------------------------------------------------
# The fast path works out where a packet ends from the FF bytes it counts, and parks a packet
# that straddles two feeds with its bytes already split. These streams put escapes exactly where
# that bookkeeping could slip, and every split point is compared with the reference.


def _payload_with_escaped_crc(prefix: bytes) -> bytes:
    """``prefix`` plus a counter, chosen so that the packet's CRC has an FF byte (sent escaped)."""
    for counter in range(100_000):
        payload = prefix + counter.to_bytes(3, "little")
        body = b"\xff\xfd" + escape(len(payload).to_bytes(4, "little")) + escape(payload)
        if 0xFF in crc16(body).to_bytes(2, "little"):
            return payload
    raise AssertionError("no payload found")


EDGE_PAYLOADS = [
    b"a" * 9 + b"\xff",  # the last pair straddles the nominal end of the payload
    b"\xff" * 5,  # an odd number of FF bytes in the nominal payload
    b"\xff\xff" + b"a" * 6 + b"\xff",  # the bytes the pairs add hold an FF again
    b"\xff" * 40 + b"b",  # the pairs push the end a long way
    b"\xfd\xfe\xff\x00" * 8,  # bytes that look like escapes once unescaped
    bytes(255),  # FF in the length field
    b"",
]


def _assert_like_reference(stream: bytes, max_payload: int, cut_lists: list[list[int]]) -> None:
    reference = ReferenceUnframer(max_payload)
    expected = reference.feed(stream)
    for cuts in cut_lists:
        unframer = Unframer(max_payload)
        assert feed_chunks(unframer, stream, cuts) == expected, cuts
        assert counts(unframer.stats) == reference.counts, cuts
        assert not unframer.pending


def test_fast_path_edge_cases_at_every_split() -> None:
    payloads = [*EDGE_PAYLOADS, _payload_with_escaped_crc(b"crc"), _payload_with_escaped_crc(b"")]
    framer = Framer()
    stream = b"".join(framer.encode(payload) for payload in payloads)
    assert Unframer().feed(stream) == payloads
    rng = random.Random(5)
    cut_lists = [[cut] for cut in range(len(stream) + 1)]
    cut_lists += [sorted(rng.sample(range(len(stream) + 1), 3)) for _ in range(200)]
    _assert_like_reference(stream, 300, cut_lists)


def test_corruption_near_a_chunk_boundary_is_handled_at_once() -> None:
    # Each corruption sits in a packet that is parked (incomplete) when it arrives; a good packet
    # follows, and must come out of the very feed that completes it.
    good = encode_packet(b"good")
    for payload in EDGE_PAYLOADS[:4]:
        wire = encode_packet(payload + b"0123456789")
        for insert in (b"\xff\x01", b"\xff\xfd", b"\xff\xfe", b"\xff"):
            for at in range(7, len(wire)):
                stream = wire[:at] + insert + wire[at:] + good
                cut_lists = [[at], [at + 1], [at - 1, at + len(insert)], list(range(len(stream)))]
                _assert_like_reference(stream, 300, cut_lists)


@pytest.mark.parametrize("size", [0x10000, 0x100FF, 0x1FF00, 0x10203])
def test_lengths_beyond_16_bits(size: int) -> None:
    # The fast path reads the length field itself; bytes 1 and 2 of these lengths matter, and
    # 0x100FF and 0x1FF00 are sent with an escaped FF in them.
    payload = random.Random(size).randbytes(size)
    stream = encode_packet(payload) + encode_packet(b"after")
    for cuts in ([], [7], [len(stream) // 2], [len(stream) - 9, len(stream) - 8]):
        unframer = Unframer(max_payload=1 << 20)
        assert feed_chunks(unframer, stream, cuts) == [payload, b"after"]
    # Too long by one byte: dropped at once, and hunting goes on inside the random payload.
    _assert_like_reference(stream, size - 1, [[], [len(stream) // 3]])


@pytest.mark.parametrize("max_payload", [0xFE, 0xFF, 0xFFFE, 0xFFFF, 0x10000])
def test_max_payload_boundaries(max_payload: int) -> None:
    payloads = [bytes(max_payload - 1), bytes(max_payload), bytes(max_payload + 1)]
    stream = b"".join(encode_packet(payload) for payload in payloads)
    unframer = Unframer(max_payload)
    assert unframer.feed(stream) == payloads[:2]
    assert unframer.stats.too_long == 1


# --- unframer: properties ------------------------------------------------------------------------

# Payload bytes biased towards the ones the framing treats specially.
special_bytes = st.binary(max_size=300) | st.lists(
    st.sampled_from([0xFF, 0xFE, 0xFD, 0x00, 0x41]), max_size=80
).map(bytes)


@given(
    payloads=st.lists(special_bytes, max_size=8),
    noise=st.lists(st.binary(max_size=20).map(lambda b: b.replace(b"\xff", b"")), max_size=9),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12),
)
def test_roundtrip_any_chunking(payloads: list[bytes], noise: list[bytes], cuts: list[int]) -> None:
    framer = Framer()
    wire = b""
    for index, payload in enumerate(payloads):
        wire += (noise[index] if index < len(noise) else b"") + framer.encode(payload)
    cuts = [c for c in cuts if c <= len(wire)]
    unframer = Unframer()
    assert feed_chunks(unframer, wire, cuts) == payloads
    assert unframer.stats.dropped == 0
    assert not unframer.pending


def _stream_pieces(rng: random.Random) -> bytes:
    """One random piece of a hostile stream."""
    kind = rng.randrange(8)
    payload = rng.choice(
        [
            rng.randbytes(rng.randrange(0, 64)),
            bytes(rng.choice(b"\xff\xfe\xfd\x00") for _ in range(rng.randrange(0, 40))),
            rng.randbytes(rng.choice([255, 256, 300])),
        ]
    )
    wire = bytearray(encode_packet(payload, nop=rng.random() < 0.3))
    if kind == 0:  # flip bytes
        for _ in range(rng.randrange(1, 4)):
            wire[rng.randrange(len(wire))] = rng.choice([0xFF, 0xFE, 0xFD, rng.randrange(256)])
    elif kind == 1:  # truncate
        del wire[rng.randrange(len(wire)) :]
    elif kind == 2:  # insert no-ops or escapes anywhere
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(len(wire) + 1)
            wire[at:at] = rng.choice([b"\xff\xfe", b"\xff", b"\xff\x01", b"\xfe", b"\xff\xfd"])
    elif kind == 3:  # noise
        return bytes(rng.choice(b"\xff\xfe\xfd\x00\x41") for _ in range(rng.randrange(1, 30)))
    return bytes(wire)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    max_payload=st.sampled_from([0, 16, 255, 300, 65536]),
)
def test_matches_reference_on_hostile_streams(seed: int, max_payload: int) -> None:
    rng = random.Random(seed)
    stream = b"".join(_stream_pieces(rng) for _ in range(rng.randrange(1, 12)))
    reference = ReferenceUnframer(max_payload)
    expected = reference.feed(stream)
    for cuts in ([], list(range(len(stream))), [rng.randrange(len(stream) + 1) for _ in range(6)]):
        unframer = Unframer(max_payload)
        assert feed_chunks(unframer, stream, cuts) == expected
        assert counts(unframer.stats) == reference.counts


def test_reference_agrees_on_spec_example() -> None:
    # Guards the guard: the reference itself decodes the spec's example.
    reference = ReferenceUnframer(2048)
    assert reference.feed(bytes.fromhex("fefffd0200000001ffff7ac5")) == [b"\x01\xff"]
