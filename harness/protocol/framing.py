"""Framing: turn payloads into escaped, CRC-checked wire packets and back (docs/protocol.md 1).

The receiver is the hot path for every byte from every device, so it never walks the stream one
byte at a time in Python. It keeps a ``bytearray`` of unconsumed bytes and has two paths:

* ``Unframer._fast``: decodes every *simple* packet (only ``FF FF`` escapes in the payload, none
  in the length or CRC) with a handful of C-level calls: one ``unpack_from`` for the packet
  start and length, one ``split`` on FF to count, check and unescape the pairs, one ``join``,
  one ``crc_hqx`` over the raw wire bytes (a memoryview slice, no copy). Per-packet cost is a
  fixed number of interpreter steps; ``find`` (memchr) hunts when a packet does not follow the
  previous one at once.
* ``Unframer._scan``: a resumable token-level scan for everything else (no-ops, interruptions,
  invalid escapes, FF in the length or CRC, a too-long length). It too jumps from FF to FF with
  ``find``; bytes between them are only counted.

Neither path rescans a long pending packet on every small feed: the fast path parks an
incomplete packet (keeping its bytes already split) until the buffer holds the minimum number
of bytes it needs, and the token scan keeps its position. While parked, every feed checks the
new bytes for any escape other than ``FF FF``, and any hit hands the packet to the token scan at
once, so a corrupted length can never hold later packets hostage (docs/protocol.md 1.3, 4.3).
"""

from __future__ import annotations

import re
import struct
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
_unpack_head = struct.Struct("<HI").unpack_from
"""The FF FD of a packet start as a u16 (0xFDFF) and the raw u32 length field after it."""
_START_MARK = 0xFDFF


def _has_ff_table() -> bytes:
    table = bytearray(0x10000)
    table[0xFF::0x100] = b"\x01" * 0x100  # low byte FF
    table[0xFF00:] = b"\x01" * 0x100  # high byte FF
    return bytes(table)


_HAS_FF = _has_ff_table()
"""``_HAS_FF[v]`` is 1 when the u16 ``v`` has an FF byte, i.e. it is sent escaped."""


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

    A parked packet is always at index 0 of the buffer (the fast path cuts everything before
    it). When its payload is incomplete it keeps in ``_parked`` the payload bytes received so
    far, split on FF, so resuming it splits only the rest.
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
        self._need = 0  # in _WAIT: buffer size at which the fast path is worth resuming
        self._watch = 0  # in _WAIT: token boundary up to which the bytes are known simple
        # In _WAIT, if the payload is incomplete: (parts, split_end, length): its bytes from the
        # end of the length field up to split_end, split on FF, and its declared length.
        self._parked: tuple[list[bytes], int, int] | None = None
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
        phase = self._phase
        if phase < _LENGTH:
            if phase == _WAIT and len(buf) < self._need:  # a parked packet is still incomplete
                if self._still_simple():
                    return out
                start = 0  # the parked packet is at index 0
            else:
                start = self._fast(out)
                if start < 0:  # the usual case: hunted to the end, or a simple packet is parked
                    self.stats.delivered += len(out)
                    return out
            self._start_packet(start)
        while True:
            result = self._scan()
            if result == _DONE:
                self._field_done(out)
                if self._phase != _HUNT:
                    continue
            elif result == _MORE:
                break
            elif result == _INTERRUPTED:
                self.stats.interrupted += 1
                self._start_packet(self._pos)
                continue
            else:
                self.stats.invalid_escape += 1
                self._phase = _HUNT
            start = self._fast(out)
            if start < 0:
                break
            self._start_packet(start)
        # Cut everything before the packet being tokenised (_fast cuts for itself).
        if self._phase >= _LENGTH and self._packet:
            cut = self._packet
            del buf[:cut]
            self._packet = 0
            self._pos -= cut
            self._field -= cut
            self._payload_first -= cut
        self.stats.delivered += len(out)
        return out

    def _fast(self, out: list[bytes]) -> int:
        """Fast path: decode every simple packet from the hunt position or the parked packet.

        Returns -1 when the buffer is used up, after cutting the consumed bytes: the state is
        then ``_HUNT`` (nothing pending) or ``_WAIT`` (a simple packet is incomplete, at index
        0, and its buffered bytes have been checked; until the buffer holds the ``_need``
        bytes it needs at least, ``feed`` only checks the new bytes, so a long packet arriving
        in small pieces is not rescanned on every feed). Otherwise returns the start of a
        packet that is not simple (an FF in the length or CRC field, a no-op, an FD or invalid
        escape, a too-long length), which the token-level scan then takes from its start.
        Deliveries are counted by ``feed``. Everything here is in locals and one loop, because
        per-packet interpreter overhead is what this path is made of.

        Nothing walks the bytes in Python. The nominal ``length`` bytes after the length field
        are split on FF (one C pass) and counted: if every FF is in an aligned ``FF FF`` pair,
        the raw end is ``first + length + pairs``. The few bytes the pairs push the end by (the
        tail) usually hold no FF and just extend the last part; otherwise they are split and
        counted the same way until the end stops moving. The payload is the even parts joined
        by FF, and it has exactly ``length`` bytes if and only if every part between the two FF
        of a pair is empty, i.e. every FF was an escaped data byte.
        """
        buf = self._buf
        size = len(buf)
        parked = None
        if self._phase == _WAIT:  # the buffer holds the bytes the parked packet needs at least
            parked = self._parked  # resume it from what is already split, or from its start
            pos = 0
        else:
            pos = self._pos
        max_payload = self.max_payload
        short = max_payload + 1 if max_payload < 0xFFFF else 0x10000  # lengths _HAS_FF covers
        append = out.append
        view = memoryview(buf)  # released before the buffer is cut, or on return
        while True:
            if parked is None:
                if size - pos >= 6:
                    mark, length = _unpack_head(buf, pos)
                else:
                    mark = 0
                if mark == _START_MARK:
                    start = pos
                else:
                    start = buf.find(PACKET_START, pos) if pos < size else -1
                    if start < 0:
                        if pos < size:
                            # Keep a trailing FF: the next feed may bring its FD.
                            end = size - 1 if buf[size - 1] == 255 else size
                            self.stats.skipped_bytes += end - pos
                        else:
                            end = size
                        view.release()
                        del buf[:end]
                        self._phase = _HUNT
                        self._pos = 0
                        return -1
                    self.stats.skipped_bytes += start - pos
                    if size - start < 6:  # the length field is incomplete
                        if buf.find(255, start + 2) >= 0:
                            return start
                        view.release()
                        return self._park(start, start + 6, size)
                    length = _unpack_head(buf, start)[1]
                # Too long, or an FF in the length field (sent escaped): the token scan's job.
                if length >= short:
                    if length > max_payload or _HAS_FF[length & 0xFFFF] or _HAS_FF[length >> 16]:
                        return start
                elif _HAS_FF[length]:
                    return start
                first = start + 6  # after FF FD and the 4 length bytes
                end = first + length
                if end > size:  # the payload is incomplete: check its bytes, then park
                    parts = view[first:size].tobytes().split(b"\xff")
                    # FF number 2k-1 pairs with FF number 2k: the part between them must be
                    # empty; after a lone (odd) FF, the part must be empty too: that FF is the
                    # last byte buffered and waits for its partner.
                    if any(parts[1::2]):
                        return start
                    count = len(parts) - 1
                    view.release()
                    del buf[:start]  # the parked packet is at index 0 from now on
                    self._phase = _WAIT
                    self._need = end - start + ((count + 1) >> 1) + 2  # its pairs and the CRC
                    self._watch = size - start - (count & 1)
                    self._parked = (parts, size - start, length)
                    return -1
                parts = view[first:end].tobytes().split(b"\xff")
            else:  # resume the parked packet: split the rest of its nominal payload
                parts, split_end, length = parked
                parked = None
                start = 0
                first = 6
                end = first + length
                more = view[split_end:end].tobytes().split(b"\xff")
                parts[-1] += more[0]
                parts += more[1:]
            count = len(parts) - 1
            if count:
                grown = end + ((count + 1) >> 1)
                tail = buf[end:grown]
                if count & 1 or 255 in tail or grown + 2 > size:
                    # A pair straddles the nominal end, the tail holds FF bytes, or the packet
                    # is incomplete: split and count until the end stops moving.
                    while True:
                        more = tail.split(b"\xff")
                        parts[-1] += more[0]
                        parts += more[1:]
                        count += len(more) - 1
                        if grown > size:  # the tail was cut short: the packet is incomplete
                            view.release()
                            return self._park_parts(start, parts, first + length, None)
                        end = grown
                        grown = first + length + ((count + 1) >> 1)
                        if grown == end:
                            break
                        tail = buf[end:grown]
                    if count & 1:
                        return start  # the last FF is beyond the payload: in the CRC field
                    if end + 2 > size:  # the payload is complete, the CRC field is not
                        if end < size and buf[end] == 255:
                            return start
                        view.release()
                        return self._park_parts(start, parts, first + length, end + 2)
                else:
                    parts[-1] += tail
                    end = grown
                payload = b"\xff".join(parts[::2])
                # The raw end assumed that every FF is in a pair; if one is not (a no-op, an
                # FD, an invalid escape), the part between the two FF of some "pair" is not
                # empty, its bytes are missing from the join, and the payload is short.
                if len(payload) != length:
                    return start
            else:
                if end + 2 > size:  # the payload is complete, the CRC field is not
                    if end < size and buf[end] == 255:
                        return start
                    view.release()
                    return self._park(start, end + 2, size)
                payload = parts[0]
            crc = buf[end] | buf[end + 1] << 8
            if _HAS_FF[crc]:
                return start  # the CRC field is escaped: the token scan's job
            if _crc_hqx(view[start:end], CRC16_INIT) == crc:
                append(payload)
            else:
                self.stats.bad_crc += 1
            pos = end + 2

    def _park(self, start: int, need: int, watch: int) -> int:
        """Park the simple packet at ``start`` until the buffer holds ``need`` bytes; its bytes
        up to the token boundary ``watch`` are checked. Cuts the buffer in front of it."""
        del self._buf[:start]
        self._phase = _WAIT
        self._need = need - start
        self._watch = watch - start
        self._parked = None
        return -1

    def _park_parts(self, start: int, parts: list[bytes], nominal: int, need: int | None) -> int:
        """Check and park the packet at ``start`` whose payload bytes are ``parts``, split on
        FF: all of them when only CRC bytes are missing (the buffer must then hold ``need``
        bytes), else those up to the end of the buffer (``need`` is None). ``nominal`` is
        where the payload would end without escapes. Returns -1, or ``start`` if the bytes
        hold an escape other than FF FF."""
        # FF number 2k-1 pairs with FF number 2k: the part between them must be empty; after a
        # lone (odd) FF, the part must be empty too: the FF is the last byte buffered.
        if any(parts[1::2]):
            return start
        count = len(parts) - 1
        size = len(self._buf)
        if need is not None:
            return self._park(start, need, size)
        # The payload is incomplete: it needs at least its pairs and the CRC. Unless the pairs
        # pushed the split bytes past the nominal end, resuming only splits the rest.
        self._park(start, nominal + ((count + 1) >> 1) + 2, size - (count & 1))
        if size <= nominal:
            self._parked = (parts, size - start, nominal - start - 6)
        return -1

    def _still_simple(self) -> bool:
        """Check the parked packet's newly buffered bytes; False if the token scan must take it.

        A parked packet is one the fast path will decode once enough bytes are there, which
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
        # FF number 2k-1 pairs with FF number 2k: the part between them must be empty. With an
        # odd count, the last part follows a lone FF, which must be the last byte buffered.
        parts = buf[watch:].split(b"\xff")
        if any(parts[1::2]):
            return False
        self._watch = size - 1 if len(parts) & 1 == 0 else size
        return True

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
