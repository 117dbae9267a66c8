"""A seeded fault-injecting wrapper around any transport: a bad UART on demand.

The protocol promises that line noise, torn frames and stray console text are dropped by the
receiver, never delivered as data and never need a reboot (docs/protocol.md 1.3 and 4,
docs/reset-semantics.md). Clean pipes cannot check that, so this wrapper sits between the
client and the device transport and damages the byte stream in both directions the way a real
line does: flipped bits, lost and extra bytes, stray escapes and packet starts, torn frames,
boot banners and stalls. docs/fault-injection.md says what each fault models.

Reproducibility is the point: a failure found by a soak must be replayable. Each direction has
its own ``random.Random`` derived from the seed, and every decision is tied to a position in
that direction's byte stream (the number of bytes that went through it), never to how the
stream happened to be cut into reads and writes, nor to the clock. So the same seed and the
same bytes give the same faults at the same places, however the operating system chunked them.
"""

from __future__ import annotations

import contextlib
import math
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields

from harness.errors import ConfigError, TransportClosedError
from harness.transport.base import Transport

BIT_FLIP = "bit_flip"
DROP = "drop"
NOISE = "noise"
ESCAPE = "escape"
FAKE_START = "fake_start"
TRUNCATE = "truncate"
BANNER = "banner"
DELAY = "delay"
FAULT_KINDS = (BIT_FLIP, DROP, NOISE, ESCAPE, FAKE_START, TRUNCATE, BANNER, DELAY)
"""Every fault kind, in the order counts are reported."""

HOST_TO_DEVICE = "host->device"
DEVICE_TO_HOST = "device->host"
DIRECTIONS = (HOST_TO_DEVICE, DEVICE_TO_HOST)

BOOT_BANNERS = (
    "*** Booting Zephyr OS build v2.5.0  ***\r\n",
    "*** Booting Zephyr OS ***\r\n",
    "[00:00:00.000,000] <inf> uart: ready\r\n",
    "uart:~$ ",
)
"""Text a device's console prints at boot; on a shared UART it lands between (or inside) frames."""

_PACKET_START = b"\xff\xfd"
_ESCAPE_BYTE = 0xFF
_START_BYTE = 0xFD
_PER_BYTES = 1000
_NEVER = 1 << 62


@dataclass(frozen=True)
class FaultProfile:
    """How often each fault happens, in expected faults per 1000 bytes, in each direction.

    The defaults are stressful on purpose (a real UART is many orders of magnitude cleaner):
    with a soak's typical calls of a few hundred bytes, roughly one call in six meets a fault
    that loses it, so a few hundred calls exercise every recovery path many times while most
    calls still succeed.
    """

    bit_flip: float = 0.1
    """One bit of one byte inverted (electrical noise, a baud-rate glitch)."""
    drop: float = 0.1
    """1..max_run bytes lost (receiver overrun, FIFO overflow)."""
    noise: float = 0.1
    """1..max_run random bytes inserted (a glitch read as start bits)."""
    escape: float = 0.1
    """A lone 0xFF inserted: it changes the meaning of whichever byte follows it."""
    fake_start: float = 0.1
    """FF FD and a made-up u32 length inserted: a packet start out of nowhere."""
    truncate: float = 0.1
    """The rest of the current frame lost, up to the next packet start (a torn frame)."""
    banner: float = 0.1
    """A boot banner line inserted (console text on the RPC UART)."""
    delay: float = 0.3
    """The line stalls for up to max_delay_s before the next byte (an adapter's latency)."""
    max_run: int = 4
    """Most bytes one drop or noise fault loses or adds."""
    max_delay_s: float = 0.02
    """Longest stall of one delay fault."""
    banners: tuple[str, ...] = BOOT_BANNERS
    """Texts a banner fault picks from."""

    def __post_init__(self) -> None:
        for kind in FAULT_KINDS:
            rate = getattr(self, kind)
            if not isinstance(rate, int | float) or not 0 <= rate < _PER_BYTES:
                raise ConfigError(
                    f"FaultProfile.{kind} is {rate!r}; it must be a number of faults per "
                    f"{_PER_BYTES} bytes, at least 0 and below {_PER_BYTES}"
                )
        if self.total_rate >= _PER_BYTES:
            raise ConfigError(
                f"FaultProfile rates add up to {self.total_rate} per {_PER_BYTES} bytes; "
                f"they must stay below {_PER_BYTES} (at most one fault per byte)"
            )
        if self.max_run < 1:
            raise ConfigError(f"FaultProfile.max_run is {self.max_run}; it must be at least 1")
        if self.max_delay_s < 0:
            raise ConfigError(f"FaultProfile.max_delay_s is {self.max_delay_s}; must be >= 0")
        if self.banner and not self.banners:
            raise ConfigError("FaultProfile.banner is non-zero but banners is empty")

    @property
    def total_rate(self) -> float:
        """Expected faults of all kinds per 1000 bytes."""
        return sum(self.rate(kind) for kind in FAULT_KINDS)

    def rate(self, kind: str) -> float:
        """Expected faults of ``kind`` per 1000 bytes."""
        return float(getattr(self, kind))

    @classmethod
    def only(cls, kind: str, rate: float, **others: object) -> FaultProfile:
        """A profile with a single fault kind at ``rate``; for tests that isolate one fault."""
        if kind not in FAULT_KINDS:
            raise ConfigError(f"unknown fault kind {kind!r}; kinds are {', '.join(FAULT_KINDS)}")
        rates: dict[str, object] = {k: 0.0 for k in FAULT_KINDS}
        rates[kind] = rate
        names = {f.name for f in fields(cls)}
        unknown = set(others) - names
        if unknown:
            raise ConfigError(f"FaultProfile has no field(s) {sorted(unknown)}")
        rates.update(others)
        return cls(**rates)  # type: ignore[arg-type]


Piece = bytes | float
"""What one direction hands on: bytes to pass, or a stall of that many seconds before the next."""


class _FaultyStream:
    """The faults of one direction: bytes in, damaged bytes and stalls out.

    The distance (in input bytes) to the next fault is drawn from a geometric distribution, so
    every input byte has the same chance of being hit, at most once. It is drawn afresh at
    every packet start, which ties each fault to a place inside a frame rather than to the
    whole history of the stream: a replay whose frames differ in length by an escaped byte
    here and there (session ids and CRCs come from random nonces) still hits the same frames
    at the same places. A fault fires just before an input byte, so one due at the end of a
    chunk waits for the next chunk's first byte; with the framing state carried across
    chunks, that keeps every decision independent of how the stream was chunked.
    """

    def __init__(self, direction: str, profile: FaultProfile, rng: random.Random) -> None:
        self.direction = direction
        self.injected: Counter[str] = Counter()
        self._profile = profile
        self._rng = rng
        self._kinds = [k for k in FAULT_KINDS if profile.rate(k) > 0]
        self._weights = [profile.rate(k) for k in self._kinds]
        self._per_byte = profile.total_rate / _PER_BYTES
        self._offset = 0  # input bytes seen in this direction, faulty or not
        self._frames = 0  # packet starts seen in the input
        self._frame_at = 0  # stream offset of the current frame's FF FD
        self._ff_run = 0  # 0xFF input bytes right before the current position
        self._skip = 0  # input bytes still to drop for a drop fault
        self._truncating = False  # dropping input up to the next packet start
        self._gap = self._draw_gap()

    def _draw_gap(self) -> int:
        if self._per_byte <= 0:
            return _NEVER
        draw = 1.0 - self._rng.random()  # in (0, 1]
        return int(math.log(draw) / math.log1p(-self._per_byte))

    def note(self, data: bytes) -> None:
        """Account for bytes that passed untouched (faults off), keeping the framing state.

        No random number is drawn, so the faults depend only on the faulty traffic."""
        self._consume(data, 0, len(data))

    def clear_line(self) -> None:
        """Forget a drop or truncation in progress: from now on the line is clean."""
        self._skip = 0
        self._truncating = False

    def process(self, data: bytes) -> tuple[list[Piece], list[str]]:
        """Damage ``data``; returns the pieces to pass on and one line per fault injected."""
        out: list[Piece] = []
        events: list[str] = []
        i, end = 0, len(data)
        while i < end:
            if self._skip:
                stop = min(end, i + self._skip)
                self._skip -= stop - i
                i = self._consume(data, i, stop)
            elif self._truncating:
                start = self._next_start(data, i, end)
                if start < 0:
                    i = self._consume(data, i, end)
                else:
                    i = self._consume(data, i, start + 1)
                    self._truncating = False
                    _append(out, _PACKET_START)
                    self._gap = self._draw_gap()
            elif self._gap > 0:
                stop = min(end, i + self._gap)
                start = self._next_start(data, i, stop)
                if start >= 0:
                    stop = start + 1
                _append(out, data[i:stop])
                self._gap -= stop - i
                i = self._consume(data, i, stop)
                if start >= 0:
                    self._gap = self._draw_gap()
            else:
                next_i = self._inject(data, i, out, events)
                # At most one fault per input byte: a fault that leaves its byte in place
                # (an insertion, a stall) lets that byte pass before the next fault can come.
                kept = next_i == i and not self._skip and not self._truncating
                self._gap = self._draw_gap() + kept
                i = next_i
        return out, events

    def _inject(self, data: bytes, i: int, out: list[Piece], events: list[str]) -> int:
        """Apply one fault just before ``data[i]``; returns where the input continues."""
        rng, profile = self._rng, self._profile
        where = (
            f"{self.direction} frame {self._frames} byte {self._offset - self._frame_at} "
            f"(stream byte {self._offset})"
        )
        kind = rng.choices(self._kinds, self._weights)[0]
        next_i = i
        if kind == BIT_FLIP:
            bit = rng.randrange(8)
            flipped = data[i] ^ (1 << bit)
            detail = f"byte 0x{data[i]:02x} -> 0x{flipped:02x} (bit {bit})"
            _append(out, bytes((flipped,)))
            next_i = self._consume(data, i, i + 1)
        elif kind == DROP:
            self._skip = rng.randint(1, profile.max_run)
            detail = f"the next {self._skip} byte(s) lost"
        elif kind == NOISE:
            junk = rng.randbytes(rng.randint(1, profile.max_run))
            detail = f"{len(junk)} byte(s) inserted: {junk.hex(' ')}"
            _append(out, junk)
        elif kind == ESCAPE:
            detail = "a lone 0xFF inserted"
            _append(out, bytes((_ESCAPE_BYTE,)))
        elif kind == FAKE_START:
            length = rng.randrange(64) if rng.random() < 0.5 else rng.getrandbits(32)
            fake = _PACKET_START + length.to_bytes(4, "little")
            detail = f"fake packet start inserted: {fake.hex(' ')} (length {length})"
            _append(out, fake)
        elif kind == TRUNCATE:
            # The byte is dropped here, so the packet start that ends the truncation is one
            # whose 0xFF was dropped too: re-sending it then restores exactly that start.
            self._truncating = True
            detail = "the rest of the frame lost, up to the next packet start"
            next_i = self._consume(data, i, i + 1)
        elif kind == BANNER:
            text = rng.choice(profile.banners)
            detail = f"banner inserted: {text!r}"
            _append(out, text.encode("utf-8"))
        else:
            stall = rng.uniform(0.0, profile.max_delay_s)
            detail = f"line stalls {stall * 1000:.1f} ms"
            out.append(stall)
        self.injected[kind] += 1
        events.append(f"{where}: {kind}: {detail}")
        return next_i

    def _consume(self, data: bytes, start: int, stop: int) -> int:
        """Advance over input ``data[start:stop]``: count its packet starts and track the run
        of 0xFF bytes before the position (whose parity tells a packet start apart)."""
        for fd in self._starts(data, start, stop):
            self._frames += 1
            self._frame_at = self._offset + (fd - 1 - start)
        segment = data[start:stop]
        trailing = len(segment) - len(segment.rstrip(b"\xff"))
        self._ff_run = self._ff_run + trailing if trailing == len(segment) else trailing
        self._offset += stop - start
        return stop

    def _next_start(self, data: bytes, start: int, stop: int) -> int:
        """Index of the 0xFD of the first packet start in ``data[start:stop]``, or -1."""
        return next(self._starts(data, start, stop), -1)

    def _starts(self, data: bytes, start: int, stop: int) -> Iterator[int]:
        """Indexes of the 0xFD of every packet start in ``data[start:stop]``.

        A run of 0xFF begins at a token boundary (the byte before it is not 0xFF), so a 0xFD
        ends a packet start exactly when an odd number of 0xFF bytes precede it; an even run
        is escaped data, as in ``FF FF FD`` (data 0xFF, then data 0xFD). A run that reaches
        back to ``start`` continues the one the previous bytes ended with.
        """
        fd = data.find(_START_BYTE, start, stop)
        while fd >= 0:
            first_ff = fd
            while first_ff > start and data[first_ff - 1] == _ESCAPE_BYTE:
                first_ff -= 1
            run = fd - first_ff + (self._ff_run if first_ff == start else 0)
            if run % 2 == 1:
                yield fd
            fd = data.find(_START_BYTE, fd + 1, stop)


def _append(out: list[Piece], data: bytes) -> None:
    """Add bytes to the output, merging with the previous bytes so writes stay whole."""
    if not data:
        return
    if out and isinstance(out[-1], bytes):
        out[-1] += data
    else:
        out.append(bytes(data))


class FaultyTransport(Transport):
    """Wraps a transport and injects seeded faults into both directions while enabled.

    Turn the faults off (``faults_enabled = False`` or ``with faulty.faults_off():``) to give
    the link a clean line, for instance to check that it recovers. ``injected`` counts what
    was injected by kind; ``on_fault`` gets one line per fault as it happens (for a wire
    trace). One reader and one writer may use it at once, like the client does.
    """

    def __init__(
        self,
        inner: Transport,
        *,
        seed: int,
        profile: FaultProfile | None = None,
        on_fault: Callable[[str], None] | None = None,
        enabled: bool = True,
    ) -> None:
        self.inner = inner
        self.seed = seed
        self.profile = profile if profile is not None else FaultProfile()
        self.on_fault = on_fault
        self._lock = threading.Lock()
        self._enabled = enabled
        self._streams = {
            direction: _FaultyStream(
                direction, self.profile, random.Random(f"faulty:{seed}:{direction}")
            )
            for direction in DIRECTIONS
        }
        # Bytes from the device with the time each may be handed on (a stall holds back
        # everything after it, so times never decrease).
        self._held: deque[tuple[float, bytes]] = deque()
        self._hold_until = 0.0

    @property
    def description(self) -> str:
        state = "on" if self._enabled else "off"
        return f"{self.inner.description} through faulty line (seed {self.seed}, faults {state})"

    # -- switching -------------------------------------------------------------------------

    @property
    def faults_enabled(self) -> bool:
        return self._enabled

    @faults_enabled.setter
    def faults_enabled(self, enabled: bool) -> None:
        """Switching off ends any drop or truncation in progress and releases stalled bytes
        at once: from that moment the line is clean, so a recovery check tests the link, not
        leftovers of the fault layer."""
        with self._lock:
            if self._enabled and not enabled:
                for stream in self._streams.values():
                    stream.clear_line()
                self._held = deque((0.0, data) for _, data in self._held)
                self._hold_until = 0.0
            self._enabled = enabled

    @contextlib.contextmanager
    def faults_off(self) -> Iterator[None]:
        """A clean line for the duration of the block; the previous setting comes back after."""
        previous = self.faults_enabled
        self.faults_enabled = False
        try:
            yield
        finally:
            self.faults_enabled = previous

    # -- counts ----------------------------------------------------------------------------

    @property
    def injected(self) -> Counter[str]:
        """Faults injected so far by kind, both directions together (a copy)."""
        total: Counter[str] = Counter()
        for stream in self._streams.values():
            total.update(stream.injected)
        return total

    def injected_by_direction(self) -> dict[str, Counter[str]]:
        """Faults injected so far by kind, per direction (copies)."""
        return {direction: Counter(s.injected) for direction, s in self._streams.items()}

    def summary(self) -> str:
        """One line per direction with the count of every kind, zeros included."""
        return "; ".join(
            f"{direction}: " + ", ".join(f"{kind} {counts[kind]}" for kind in FAULT_KINDS)
            for direction, counts in self.injected_by_direction().items()
        )

    # -- the Transport interface -------------------------------------------------------------

    def write(self, data: bytes) -> None:
        with self._lock:
            pieces, events = self._through(HOST_TO_DEVICE, bytes(data))
        self._report(events)
        for piece in pieces:
            if isinstance(piece, float):
                time.sleep(piece)  # the stall itself is the fault; nothing to wait for
            else:
                self.inner.write(piece)

    def read(self, timeout: float) -> bytes:
        """Bytes from the device, damaged; a stall holds bytes back but never makes this
        return later than ``timeout`` (it returns ``b""`` if only held bytes are pending)."""
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            now = time.monotonic()
            ready = self._release(now)
            if ready:
                return ready
            wait = deadline - now
            with self._lock:
                if self._held:
                    wait = min(wait, self._held[0][0] - now)
            try:
                data = self.inner.read(max(wait, 0.0))
            except TransportClosedError:
                # The device end is gone: what it sent before that still arrives, stalled or
                # not; the next read reports the end.
                if flushed := self._release(math.inf):
                    return flushed
                raise
            if data:
                self._hold(data)
            now = time.monotonic()
            ready = self._release(now)
            if ready or now >= deadline:
                return ready

    def close(self) -> None:
        self.inner.close()

    # -- internals ---------------------------------------------------------------------------

    def _through(self, direction: str, data: bytes) -> tuple[list[Piece], list[str]]:
        """The pieces and fault lines for ``data``; the caller holds the lock."""
        stream = self._streams[direction]
        if not self._enabled:
            stream.note(data)
            return [data], []
        return stream.process(data)

    def _report(self, events: list[str]) -> None:
        # Called outside the lock, so a callback may use this transport (a trace, a test).
        if self.on_fault is not None:
            for line in events:
                self.on_fault(line)

    def _hold(self, data: bytes) -> None:
        # One locked step, so switching faults off cannot slip between a stall being drawn
        # and the bytes it holds back.
        with self._lock:
            pieces, events = self._through(DEVICE_TO_HOST, data)
            now = time.monotonic()
            for piece in pieces:
                if isinstance(piece, float):
                    self._hold_until = max(self._hold_until, now) + piece
                else:
                    self._held.append((self._hold_until, piece))
        self._report(events)

    def _release(self, now: float) -> bytes:
        with self._lock:
            ready = []
            while self._held and self._held[0][0] <= now:
                ready.append(self._held.popleft()[1])
        return b"".join(ready)
