"""FaultyTransport on real pipes: reproducible, every fault kind real and counted, off is clean.

The soak (tests/device/test_fault_soak.py) trusts this layer to damage the line as documented
and to be replayable from a seed; these tests check that without a device, so a soak failure
can be blamed on the link, not on the fault layer.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import time
from collections.abc import Iterator

import pytest

from harness.errors import ConfigError, TransportClosedError
from harness.protocol.framing import PACKET_START, Unframer, encode_packet
from harness.transport.faulty import (
    BANNER,
    BIT_FLIP,
    BOOT_BANNERS,
    DELAY,
    DEVICE_TO_HOST,
    DROP,
    ESCAPE,
    FAKE_START,
    FAULT_KINDS,
    HOST_TO_DEVICE,
    NOISE,
    TRUNCATE,
    FaultProfile,
    FaultyTransport,
)
from harness.transport.fd import FdTransport

SEED = 20240611
# A rate per 1000 bytes high enough that a few kilobytes of traffic meet every kind many times.
HIGH_RATE = 20.0
_DEADLINE_S = 10.0


def _payloads(count: int = 60) -> list[bytes]:
    """Payloads rich in the bytes framing cares about (FF, FE, FD), from a fixed generator."""
    rng = random.Random(1)
    special = b"\xff\xfe\xfd"
    return [
        bytes(rng.choice(special) if rng.random() < 0.3 else rng.randrange(256) for _ in range(n))
        for n in (rng.randint(0, 120) for _ in range(count))
    ]


def _frames(payloads: list[bytes]) -> list[bytes]:
    return [encode_packet(p, nop=i == 0) for i, p in enumerate(payloads)]


@contextlib.contextmanager
def _wrapped(
    profile: FaultProfile, seed: int = SEED, *, enabled: bool = True
) -> Iterator[tuple[FaultyTransport, int, int, list[str]]]:
    """A FaultyTransport over real pipes; yields it, the far end's write and read descriptors
    and the list its on_fault callback fills."""
    to_us_r, to_us_w = os.pipe()
    from_us_r, from_us_w = os.pipe()
    lines: list[str] = []
    faulty = FaultyTransport(
        FdTransport(to_us_r, from_us_w, name="pipes"),
        seed=seed,
        profile=profile,
        on_fault=lines.append,
        enabled=enabled,
    )
    try:
        yield faulty, to_us_w, from_us_r, lines
    finally:
        faulty.close()
        for fd in (to_us_w, from_us_r):
            with contextlib.suppress(OSError):
                os.close(fd)


def _read_fd_to_end(fd: int) -> bytes:
    received = bytearray()
    while chunk := os.read(fd, 65536):
        received += chunk
    return bytes(received)


def _read_to_end(faulty: FaultyTransport) -> bytes:
    """Everything the faulty side delivers until the far end's close is reported."""
    received = bytearray()
    deadline = time.monotonic() + _DEADLINE_S
    while time.monotonic() < deadline:
        try:
            received += faulty.read(0.5)
        except TransportClosedError:
            return bytes(received)
    raise AssertionError(f"the far end's close was not reported within {_DEADLINE_S}s")


def _send(
    direction: str,
    profile: FaultProfile,
    chunks: list[bytes],
    seed: int = SEED,
    *,
    enabled: bool = True,
) -> tuple[bytes, FaultyTransport, list[str]]:
    """Push ``chunks`` through one direction of a faulty line; returns what came out.

    Host->device: one ``write`` per chunk, then the far end reads to the end. Device->host: the
    far end writes the chunks and closes, and the faulty side reads until it sees the close.
    The traffic stays far below a pipe's capacity, so no thread is needed.
    """
    with _wrapped(profile, seed, enabled=enabled) as (faulty, far_w, far_r, lines):
        if direction == HOST_TO_DEVICE:
            for chunk in chunks:
                faulty.write(chunk)
            faulty.inner.close()  # our write end: the far end reads to EOF
            return _read_fd_to_end(far_r), faulty, lines
        for chunk in chunks:
            os.write(far_w, chunk)
        os.close(far_w)
        return _read_to_end(faulty), faulty, lines


def _is_subsequence(short: bytes, long: bytes) -> bool:
    it = iter(long)
    return all(byte in it for byte in short)


# -- off means off ---------------------------------------------------------------------------


@pytest.mark.parametrize("direction", [HOST_TO_DEVICE, DEVICE_TO_HOST])
def test_disabled_passes_every_byte_unchanged(direction: str) -> None:
    every_kind = FaultProfile(**{kind: HIGH_RATE for kind in FAULT_KINDS})
    stream = bytes(range(256)) + b"".join(_frames(_payloads()))
    out, faulty, lines = _send(direction, every_kind, [stream], enabled=False)
    assert out == stream
    assert sum(faulty.injected.values()) == 0
    assert lines == []


# -- reproducibility -------------------------------------------------------------------------


@pytest.mark.parametrize("direction", [HOST_TO_DEVICE, DEVICE_TO_HOST])
def test_same_seed_and_traffic_give_the_same_faults(direction: str) -> None:
    profile = FaultProfile(**{kind: 3.0 for kind in FAULT_KINDS}, max_delay_s=0.002)
    frames = _frames(_payloads())
    first, faulty_a, lines_a = _send(direction, profile, frames)
    again, faulty_b, lines_b = _send(direction, profile, frames)
    other, _, lines_c = _send(direction, profile, frames, seed=SEED + 1)
    assert first == again
    assert lines_a == lines_b and lines_a, "the same seed must give the same fault lines"
    assert faulty_a.injected == faulty_b.injected
    assert first != b"".join(frames), "the faults must have changed the stream"
    assert (other, lines_c) != (first, lines_a), "another seed must give other faults"


def test_faults_do_not_depend_on_how_the_stream_is_chunked() -> None:
    """Reads come in whatever chunks the OS hands over; the faults must not care."""
    profile = FaultProfile(**{kind: 3.0 for kind in FAULT_KINDS}, max_delay_s=0.0)
    stream = b"".join(_frames(_payloads()))
    whole, _, lines_whole = _send(HOST_TO_DEVICE, profile, [stream])
    rng = random.Random(7)
    pieces: list[bytes] = []
    at = 0
    while at < len(stream):
        size = rng.choice((1, 1, 2, 3, 7, 64))
        pieces.append(stream[at : at + size])
        at += size
    chunked, _, lines_chunked = _send(HOST_TO_DEVICE, profile, pieces)
    assert chunked == whole
    assert lines_chunked == lines_whole


# -- every kind happens, is counted and does what it says -------------------------------------


def _check_bit_flip(
    sent: bytes, out: bytes, count: int, profile: FaultProfile, lines: list[str]
) -> None:
    assert len(out) == len(sent)
    changed = [(a, b) for a, b in zip(sent, out, strict=True) if a != b]
    assert len(changed) == count
    assert all(bin(a ^ b).count("1") == 1 for a, b in changed)


def _check_drop(
    sent: bytes, out: bytes, count: int, profile: FaultProfile, lines: list[str]
) -> None:
    assert count <= len(sent) - len(out) <= count * profile.max_run
    assert _is_subsequence(out, sent)


def _check_noise(
    sent: bytes, out: bytes, count: int, profile: FaultProfile, lines: list[str]
) -> None:
    assert count <= len(out) - len(sent) <= count * profile.max_run
    assert _is_subsequence(sent, out)


def _check_escape(
    sent: bytes, out: bytes, count: int, profile: FaultProfile, lines: list[str]
) -> None:
    assert len(out) == len(sent) + count
    assert out.count(0xFF) == sent.count(0xFF) + count
    assert _is_subsequence(sent, out)


def _check_fake_start(
    sent: bytes, out: bytes, count: int, profile: FaultProfile, lines: list[str]
) -> None:
    assert len(out) == len(sent) + 6 * count  # FF FD and a u32 length
    assert _is_subsequence(sent, out)
    for line in lines:
        fake = bytes.fromhex(line.split("inserted: ")[1].split(" (")[0])
        assert fake.startswith(PACKET_START) and fake in out, line


def _check_truncate(
    sent: bytes, out: bytes, count: int, profile: FaultProfile, lines: list[str]
) -> None:
    # Only bytes go; where exactly is checked on frames without 0xFF bytes below.
    assert len(out) < len(sent)
    assert _is_subsequence(out, sent)


def _check_banner(
    sent: bytes, out: bytes, count: int, profile: FaultProfile, lines: list[str]
) -> None:
    found = sum(out.count(text.encode()) for text in BOOT_BANNERS)
    assert found == count
    for text in BOOT_BANNERS:
        out = out.replace(text.encode(), b"")
    assert out == sent


def _check_delay(
    sent: bytes, out: bytes, count: int, profile: FaultProfile, lines: list[str]
) -> None:
    assert out == sent, "a stall delays bytes, it never changes them"


_CHECKS = {
    BIT_FLIP: _check_bit_flip,
    DROP: _check_drop,
    NOISE: _check_noise,
    ESCAPE: _check_escape,
    FAKE_START: _check_fake_start,
    TRUNCATE: _check_truncate,
    BANNER: _check_banner,
    DELAY: _check_delay,
}


@pytest.mark.parametrize("direction", [HOST_TO_DEVICE, DEVICE_TO_HOST])
@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_fault_kind_happens_is_counted_and_does_what_it_says(
    kind: str, direction: str
) -> None:
    profile = FaultProfile.only(kind, HIGH_RATE, max_delay_s=0.002)
    frames = _frames(_payloads())
    sent = b"".join(frames)
    out, faulty, lines = _send(direction, profile, frames)
    count = faulty.injected[kind]
    assert count >= 2, f"{kind} was never injected in {len(sent)} bytes at {HIGH_RATE}/1000"
    assert sum(faulty.injected.values()) == count, faulty.injected
    by_direction = faulty.injected_by_direction()
    assert by_direction[direction][kind] == count
    assert len(lines) == count
    assert all(line.startswith(direction) and f": {kind}: " in line for line in lines), lines
    assert all("\n" not in line for line in lines)
    _CHECKS[kind](sent, out, count, profile, lines)


def _frames_without_escapes(count: int = 60) -> list[bytes]:
    """Frames whose only 0xFF bytes are their packet starts, so they split unambiguously."""
    rng = random.Random(3)
    frames: list[bytes] = []
    while len(frames) < count:
        payload = bytes(rng.randrange(0xFD) for _ in range(rng.randint(0, 80)))
        frame = encode_packet(payload, nop=not frames)
        if frame.count(0xFF) == 1:
            frames.append(frame)
    return frames


@pytest.mark.parametrize("direction", [HOST_TO_DEVICE, DEVICE_TO_HOST])
def test_truncate_drops_the_rest_of_its_frame_and_nothing_more(direction: str) -> None:
    frames = _frames_without_escapes()
    sent = b"".join(frames)
    out, faulty, lines = _send(direction, FaultProfile.only(TRUNCATE, HIGH_RATE), frames)
    assert len(lines) == faulty.injected[TRUNCATE] >= 2
    # Each line gives the stream offset of its cut; the bytes from there up to the 0xFF of
    # the next packet start are lost, and that packet start passes (a cut on the 0xFF of a
    # start loses nothing: the frame before had ended).
    starts = [at for at in range(len(sent)) if sent.startswith(PACKET_START, at)]
    expected = bytearray()
    kept_from = 0
    for line in lines:
        where = re.search(r"\(stream byte (\d+)\)", line)
        assert where is not None, line
        cut = int(where[1])
        expected += sent[kept_from:cut]
        kept_from = next((at for at in starts if at >= cut), len(sent))
    expected += sent[kept_from:]
    assert out == bytes(expected)
    # Nothing damaged is ever delivered: a torn frame fails its CRC or never completes.
    delivered = Unframer().feed(out)
    payloads = {Unframer().feed(frame)[0] for frame in frames}
    assert set(delivered) <= payloads
    assert len(delivered) >= len(frames) - len(lines), "a cut must cost its own frame only"


# -- stalls and the read contract --------------------------------------------------------------


def test_read_returns_within_its_timeout_while_bytes_are_stalled() -> None:
    profile = FaultProfile.only(DELAY, 500.0, max_delay_s=0.3)
    sent = bytes(range(10))
    timeout = 0.02
    with _wrapped(profile) as (faulty, far_w, _, _lines):
        os.write(far_w, sent)
        received = bytearray()
        empty_reads = 0
        slowest = 0.0
        deadline = time.monotonic() + _DEADLINE_S
        while len(received) < len(sent) and time.monotonic() < deadline:
            started = time.monotonic()
            chunk = faulty.read(timeout)
            slowest = max(slowest, time.monotonic() - started)
            empty_reads += not chunk
            received += chunk
        assert bytes(received) == sent, "stalled bytes must arrive whole and in order"
        assert faulty.injected[DELAY] >= 1
        assert empty_reads >= 1, "no read ever found the bytes held back: nothing stalled"
        # Scheduling noise on a busy machine, not the stall (up to 300 ms), is what is allowed.
        assert slowest < timeout + 0.1, f"a read took {slowest:.3f}s with timeout {timeout}s"


def test_switching_faults_off_releases_stalled_bytes_at_once() -> None:
    profile = FaultProfile.only(DELAY, 999.0, max_delay_s=30.0)
    with _wrapped(profile) as (faulty, far_w, _, _lines):
        os.write(far_w, b"late")
        assert faulty.read(0.1) == b"", "precondition: the seed stalls the first byte"
        with faulty.faults_off():
            assert not faulty.faults_enabled
            started = time.monotonic()
            received = faulty.read(1.0)
            assert time.monotonic() - started < 0.5
        assert faulty.faults_enabled, "faults_off() must restore the previous setting"
        assert received == b"late"


def test_write_stalls_before_the_bytes_that_follow() -> None:
    profile = FaultProfile.only(DELAY, 999.0, max_delay_s=0.2)
    with _wrapped(profile) as (faulty, _, far_r, lines):
        started = time.monotonic()
        faulty.write(b"abc")
        elapsed = time.monotonic() - started
        assert os.read(far_r, 16) == b"abc"
        stalls = [float(line.split("stalls ")[1].split(" ms")[0]) / 1000 for line in lines]
        assert len(stalls) == faulty.injected[DELAY] >= 1
        assert elapsed >= sum(stalls) * 0.9


def test_switching_off_ends_a_truncation_in_progress() -> None:
    profile = FaultProfile.only(TRUNCATE, 999.0)
    frame = encode_packet(b"whole")
    with _wrapped(profile) as (faulty, _, far_r, _lines):
        faulty.write(b"\x01\x02\x03")  # truncation starts: everything up to a packet start goes
        faulty.faults_enabled = False
        faulty.write(frame[2:])  # no packet start in it, but the line is clean now
        faulty.inner.close()
        assert _read_fd_to_end(far_r) == frame[2:]


# -- the profile ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bit_flip": -1.0},
        {"drop": 1000.0},
        {kind: 200.0 for kind in FAULT_KINDS},
        {"max_run": 0},
        {"max_delay_s": -0.1},
        {"banners": ()},
    ],
)
def test_profile_rejects_impossible_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        FaultProfile(**kwargs)  # type: ignore[arg-type]


def test_profile_only_names_a_known_kind() -> None:
    with pytest.raises(ConfigError, match="unknown fault kind"):
        FaultProfile.only("lightning", 1.0)
    only = FaultProfile.only(NOISE, 5.0)
    assert only.total_rate == 5.0
