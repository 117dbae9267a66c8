"""Framing: turn payloads into escaped, CRC-checked wire packets and back (docs/protocol.md 1).

The receiver is the hot path for every byte from every device, so it never walks the stream one
byte at a time in Python. It keeps a ``bytearray`` of unconsumed bytes and has two paths:

* ``Unframer._fast``: hunts with ``find(b"\xff\xfd")`` and decodes every *simple* packet (only
  ``FF FF`` escapes in the payload, none in the length or CRC) with a handful of C-level calls:
  ``find`` (memchr) for FF bytes, one ``split`` on FF to check the pairs and unescape, one
  ``crc_hqx`` over the raw wire slice. Per-packet cost is a fixed number of interpreter steps.
* ``Unframer._scan``: a resumable token-level scan for everything else (no-ops, interruptions,
  invalid escapes, FF in the length or CRC, a too-long length). It too jumps from FF to FF with
  ``find``; bytes between them are only counted.

Neither path rescans a long pending packet on every small feed: the fast path parks an
incomplete packet until the buffer holds the minimum number of bytes it needs, and the token scan
keeps its position. While parked, every feed looks for ``FF FD`` among the new bytes, and any hit
hands the packet to the token scan at once, so a corrupted length can never hold later packets
hostage (docs/protocol.md 1.3, 4.3).
"""

from __future__ import annotations

import re
from binascii import crc_hqx as _crc_hqx
from dataclasses import dataclass

from harness.errors import FramingError
from harness.protocol.crc import CRC16_INIT, crc16

ESCAPE = 0xFF
"""The escape byte; every 0xFF in the length, payload and CRC fields is sent as ``FF FF``."""
NOP = 0xFE
"""Second byte of the no-op escape ``FF FE``; also the bare byte sent before a first packet."""
START = 0xFD
"""Second byte of the packet start ``FF FD``."""

PACKET_START = b"\xff\xfd"
LENGTH_SIZE = 4
CRC_SIZE = 2
MAX_LENGTH = 0xFFFFFFFF
"""The largest payload the u32 length field can declare."""

DEFAULT_MAX_PAYLOAD = 65536

_FF_RUN = re.compile(rb"\xff+")


def escape(data: bytes | bytearray | memoryview) -> bytes:
    """Escape every 0xFF of ``data`` as ``FF FF`` (the only byte that needs escaping)."""
    return bytes(data).replace(b"\xff", b"\xff\xff")


def encode_packet(payload: bytes | bytearray | memoryview, *, nop: bool = False) -> bytes:
    """Return the wire bytes of one packet carrying ``payload``.

    ``nop`` prepends the bare ``FE`` that must precede the first packet after a framer starts or
    is reset: if the line's last byte was a stray ``FF``, the pair becomes a harmless no-op instead
    of swallowing our ``FF FD``. Raises :class:`FramingError` if the payload cannot be described
    by the u32 length field.
    """
    size = len(payload)
    if size > MAX_LENGTH:
        raise FramingError(f"payload of {size} bytes does not fit the u32 length field")
    body = PACKET_START + escape(size.to_bytes(LENGTH_SIZE, "little")) + escape(payload)
    crc = crc16(body)
    wire = body + escape(crc.to_bytes(CRC_SIZE, "little"))
    return b"\xfe" + wire if nop else wire


class Framer:
    """Encodes packets for one sender and remembers whether the next one needs the leading FE.

    The bare FE is only needed once per framer lifetime (the line may hold a stray FF from before
    we started); sending it before every packet would just waste a byte.
    """

    def __init__(self) -> None:
        self._need_nop = True

    @property
    def need_nop(self) -> bool:
        """True when the next packet will be preceded by the bare FE."""
        return self._need_nop

    def encode(self, payload: bytes | bytearray | memoryview) -> bytes:
        """Return the wire bytes of ``payload``, with the FE when this is the first packet."""
        wire = encode_packet(payload, nop=self._need_nop)
        self._need_nop = False
        return wire

    def reset(self) -> None:
        """Forget what was sent: the next packet starts with FE again (the peer may have reset)."""
        self._need_nop = True


@dataclass
class UnframerStats:
    """Counters of everything the unframer saw; drop reasons follow docs/protocol.md 1.3."""

    delivered: int = 0
    bad_crc: int = 0
    too_long: int = 0
    invalid_escape: int = 0
    interrupted: int = 0
    skipped_bytes: int = 0
    """Bytes passed over while hunting for a packet start (line noise, boot text, the bare FE)."""

    @property
    def dropped(self) -> int:
        """Total number of dropped packets, whatever the reason."""
        return self.bad_crc + self.too_long + self.invalid_escape + self.interrupted


# Receiver phases and scan outcomes; plain ints because they are compared on every token.
_HUNT, _WAIT, _LENGTH, _PAYLOAD, _CRC = range(5)
_DONE, _MORE, _INTERRUPTED, _INVALID = range(4)


class Unframer:
    """Sans-IO receiver: feed it bytes in any chunking, get every valid payload in order.

    Positions are indexes into ``self._buf``; the consumed prefix is cut off once per ``feed``,
    so the buffer never holds more than the current pending packet. Phases: ``_HUNT`` (between
    packets), ``_WAIT`` (a simple packet parked by the fast path until ``_need`` bytes are
    buffered) and ``_LENGTH``/``_PAYLOAD``/``_CRC`` (the token-level scan). While the token
    scan reads a field, ``_drops`` collects the raw ranges (relative to the field start) that
    unescaping removes: one byte per escaped FF (the run of FF bytes itself supplies the kept
    ones) and both bytes of a no-op, so the data is one ``join`` of the kept slices.
    """

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        if max_payload < 0:
            raise ValueError(f"max_payload must be >= 0, got {max_payload}")
        self.max_payload = max_payload
        self.stats = UnframerStats()
        self._buf = bytearray()
        self._reset_state()

    def _reset_state(self) -> None:
        self._phase = _HUNT
        self._pos = 0  # next unexamined byte; always on a token boundary inside a packet
        self._packet = 0  # index of the FF of the current packet's FF FD
        self._need = 0  # in _WAIT: buffer size at which the fast path is worth retrying
        self._watch = 0  # in _WAIT: token boundary up to which the bytes are known simple
        self._field = 0  # index where the current field's raw bytes start
        self._remaining = 0  # data bytes the current field still needs
        self._drops: list[int] = []  # flat (start, end) pairs, relative to _field
        self._payload_first = 0  # raw index of the first payload byte
        self._payload_drops: list[int] = []

    def reset(self) -> None:
        """Drop any partial packet and buffered bytes (for a fresh line); stats are kept."""
        self._buf.clear()
        self._reset_state()

    @property
    def pending(self) -> bool:
        """True while a packet has started but not ended (more bytes are needed)."""
        return self._phase != _HUNT

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Consume ``data`` and return the payloads of every packet it completed, in order."""
        buf = self._buf
        buf += data
        out: list[bytes] = []
        while True:
            phase = self._phase
            if phase == _WAIT:
                start = self._packet
                if len(buf) >= self._need:
                    start = self._fast(start, out)
                    if start < 0:
                        if self._phase == _HUNT:
                            break  # nothing left: _fast hunts to the end of the buffer
                        continue  # another packet is parked: check its buffered bytes now
                elif self._still_simple():
                    break
                self._start_packet(start)
            elif phase == _HUNT:
                start = self._fast(self._pos, out)
                if start < 0:
                    if self._phase == _HUNT:
                        break
                    continue  # a packet is parked: check its buffered bytes now
                self._start_packet(start)
            result = self._scan()
            if result == _DONE:
                self._field_done(out)
            elif result == _MORE:
                break
            elif result == _INTERRUPTED:
                self.stats.interrupted += 1
                self._start_packet(self._pos)
            else:
                self.stats.invalid_escape += 1
                self._phase = _HUNT
        # Cut the consumed prefix: everything before the pending packet (or the hunt position).
        if self._phase == _HUNT:
            if self._pos:
                del buf[: self._pos]
                self._pos = 0
        elif self._packet:
            cut = self._packet
            del buf[:cut]
            self._pos -= cut
            self._packet = 0
            self._need -= cut
            self._watch -= cut
            self._field -= cut
            self._payload_first -= cut
        return out

    def _fast(self, pos: int, out: list[bytes]) -> int:
        """Fast path: hunt from ``pos`` and decode every simple packet, without tokenising.

        Returns -1 when the buffer is used up: the state is then ``_HUNT`` (nothing pending) or
        ``_WAIT`` (a simple packet is incomplete; it waits for the number of buffered bytes it
        needs at least, so a long packet arriving in small pieces is not rescanned on every
        feed). Otherwise returns the start of a packet that is not simple (an FF in the length
        or CRC field, a no-op, an FD or invalid escape, a too-long length), which the
        token-level scan then takes from its start. Everything here is in locals and one loop,
        because per-packet interpreter overhead is what this path is made of.

        Nothing walks the bytes in Python. If every FF of the payload is in an aligned
        ``FF FF`` pair, the raw end is ``first + length + pairs``: splitting the nominal
        ``length`` bytes on FF (one C pass) counts the FF bytes there, and the few bytes they
        push the end by are split and counted the same way until the end stops moving. The
        payload is then the even parts joined by FF, and it has exactly ``length`` bytes if and
        only if every part between the two FF of a pair is empty, i.e. every FF was an escaped
        data byte.
        """
        buf = self._buf
        find = buf.find
        size = len(buf)
        max_payload = self.max_payload
        view = memoryview(buf)  # a local: released on return, before the buffer is resized
        stats = self.stats
        skipped = stats.skipped_bytes
        delivered = stats.delivered
        bad_crc = stats.bad_crc
        append = out.append
        try:
            while True:
                start = find(PACKET_START, pos)
                if start < 0:
                    # Keep a trailing FF: the next feed may bring the FD that pairs with it.
                    end = size - 1 if size > pos and buf[size - 1] == 255 else size
                    skipped += end - pos
                    self._phase = _HUNT
                    self._pos = end
                    return -1
                skipped += start - pos
                first = start + 6  # after FF FD and the 4 length bytes
                if first > size:
                    if find(255, start + 2, size) >= 0:
                        return start
                    self._wait(start, first)
                    return -1
                header = buf[start + 2 : first]
                if 255 in header:
                    return start
                length = int.from_bytes(header, "little")
                if length > max_payload:
                    return start
                end = first + length
                if end + 2 > size:
                    self._wait(start, end + 2)
                    return -1
                parts = bytes(view[first:end]).split(b"\xff")
                count = len(parts) - 1
                if count:
                    grown = end + ((count + 1) >> 1)
                    while grown != end:  # the pairs push the end; the new bytes may hold more
                        if grown + 2 > size:
                            self._wait(start, grown + 2)
                            return -1
                        more = bytes(view[end:grown]).split(b"\xff")
                        parts[-1] += more[0]
                        if len(more) > 1:
                            parts += more[1:]
                            count += len(more) - 1
                        end = grown
                        grown = first + length + ((count + 1) >> 1)
                    if count & 1:
                        return start
                    payload = b"\xff".join(parts[::2])
                    # The raw end assumed that every FF is in a pair; if one is not (a no-op,
                    # an FD, an invalid escape), the part between the two FF of some "pair" is
                    # not empty, its bytes are missing from the join, and the length is short.
                    if len(payload) != length:
                        return start
                else:
                    payload = parts[0]
                crc_low = buf[end]
                crc_high = buf[end + 1]
                if crc_low == 255 or crc_high == 255:
                    return start
                pos = end + 2
                if _crc_hqx(view[start:end], CRC16_INIT) != crc_low | crc_high << 8:
                    bad_crc += 1
                else:
                    append(payload)
                    delivered += 1
        finally:
            stats.skipped_bytes = skipped
            stats.delivered = delivered
            stats.bad_crc = bad_crc

    def _still_simple(self) -> bool:
        """Check the parked packet's newly buffered bytes; False if the token scan must take it.

        A parked packet is one the fast path will decode once ``_need`` bytes are there, which
        assumes only ``FF FF`` escapes. Any other escape (a no-op, an interrupting FF FD, an
        invalid escape) ends or changes the packet now, so it must be handled now: the drop is
        counted at once, and a later packet never waits behind this one. ``_watch`` is the
        token boundary up to which the bytes are known to be simple.
        """
        buf = self._buf
        size = len(buf)
        watch = self._watch
        if buf.find(255, watch) < 0:
            self._watch = size
            return True
        parts = bytes(memoryview(buf)[watch:size]).split(b"\xff")
        count = len(parts) - 1
        # FF number 2k-1 pairs with FF number 2k: the part between them must be empty.
        if any(parts[1 : count - (count & 1) : 2]):
            return False
        if count & 1:
            if parts[count]:  # the last FF escapes a byte other than FF
                return False
            self._watch = size - 1  # a lone FF at the end waits for its partner
        else:
            self._watch = size
        return True

    def _wait(self, start: int, need: int) -> None:
        """Park the simple packet at ``start`` until the buffer holds ``need`` bytes."""
        if self._phase != _WAIT or self._packet != start:
            self._watch = start + 2  # the FF FD watch starts right after the packet start
        self._phase = _WAIT
        self._packet = start
        self._need = need

    def _start_packet(self, index: int) -> None:
        """Begin a packet whose FF FD is at ``index``; the length field follows it."""
        self._phase = _LENGTH
        self._packet = index
        self._field = self._pos = index + 2
        self._remaining = LENGTH_SIZE
        self._drops = []

    def _field_done(self, out: list[bytes]) -> None:
        """Move on after a field completed; deliver or drop when it was the CRC."""
        phase = self._phase
        pos = self._pos
        if phase == _PAYLOAD:
            self._payload_first = self._field
            self._payload_drops = self._drops
            self._phase = _CRC
            self._field = pos
            self._remaining = CRC_SIZE
            self._drops = []
            return
        view = memoryview(self._buf)
        data = _join(view, self._field, pos, self._drops)
        if phase == _LENGTH:
            length = int.from_bytes(data, "little")
            if length > self.max_payload:
                self.stats.too_long += 1
                self._phase = _HUNT  # hunt from right after the length, reading no further
                return
            self._phase = _PAYLOAD
            self._field = pos
            self._remaining = length
            self._drops = []
            return
        # CRC field: the CRC range ends where the payload field ended (the CRC field's start).
        self._phase = _HUNT
        payload_end = self._field
        if crc16(view[self._packet : payload_end]) != int.from_bytes(data, "little"):
            self.stats.bad_crc += 1
            return
        self.stats.delivered += 1
        out.append(_join(view, self._payload_first, payload_end, self._payload_drops))

    def _scan(self) -> int:
        """Tokenise the current field from ``_pos`` as far as the buffer goes.

        ``find`` (memchr) jumps to the next FF; the bytes before it are plain data and are only
        counted. In a run of ``k`` FF bytes that starts on a token boundary (every run does: the
        byte before it is plain or ends an escape), the first ``k // 2`` pairs are escaped data
        bytes; when ``k`` is odd the last FF escapes the byte after the run (no-op, packet start
        or invalid escape).
        """
        buf = self._buf
        size = len(buf)
        pos = self._pos
        remaining = self._remaining
        field = self._field
        drops = self._drops
        while True:
            limit = pos + remaining
            run_start = buf.find(ESCAPE, pos, limit if limit < size else size)
            if run_start < 0:
                if limit <= size:
                    self._pos = limit
                    self._remaining = 0
                    return _DONE
                self._pos = size
                self._remaining = limit - size
                return _MORE
            remaining -= run_start - pos
            run_end = _FF_RUN.match(buf, run_start).end()  # type: ignore[union-attr]
            run = run_end - run_start
            pairs = run >> 1
            if pairs >= remaining:
                keep = run_start + remaining - field
                drops += (keep, keep + remaining)
                self._pos = run_start + 2 * remaining
                self._remaining = 0
                return _DONE
            if pairs:
                keep = run_start + pairs - field
                drops += (keep, keep + pairs)
                remaining -= pairs
            if run & 1 == 0:
                pos = run_end
                continue
            if run_end == size:  # a lone FF at the end: its partner has not arrived yet
                self._pos = run_end - 1
                self._remaining = remaining
                return _MORE
            follower = buf[run_end]
            if follower == NOP:
                drops += (run_end - 1 - field, run_end + 1 - field)
                pos = run_end + 1
                continue
            if follower == START:
                self._pos = run_end - 1
                return _INTERRUPTED
            self._pos = run_end + 1  # the invalid byte is consumed
            return _INVALID


def _join(view: memoryview, first: int, end: int, drops: list[int]) -> bytes:
    """The bytes of ``view[first:end]`` without the ``drops`` ranges (relative to ``first``)."""
    if not drops:
        return bytes(view[first:end])
    pieces = []
    keep = first
    for index in range(0, len(drops), 2):
        pieces.append(view[keep : first + drops[index]])
        keep = first + drops[index + 1]
    pieces.append(view[keep:end])
    return b"".join(pieces)
