"""A wire trace as text a person reads: times, raw bytes, decoded frames, notes.

This is what ``python -m harness trace FILE`` prints and what a failed test's report shows.
Times are seconds since the segment's header (monotonic, so intervals are exact); the header
line gives the wall-clock start to line the trace up with other logs. Raw bytes are always
shown, with an ASCII column, because the decoded view only says what the bytes meant to a
correct receiver: when something is wrong, the bytes are the evidence.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

from harness.protocol.framing import DEFAULT_MAX_PAYLOAD
from harness.trace import (
    DIRECTIONS,
    Direction,
    Header,
    Note,
    Record,
    TraceFile,
    WireBytes,
    iter_segments,
)
from harness.trace_decode import WireDecoder

PREVIEW_ROWS = 4
"""Hexdump rows shown per chunk unless ``full``; 16 bytes a row."""
MERGE_GAP_S = 0.005
"""Back-to-back chunks of one direction closer than this are shown as one block; a longer
pause is worth seeing, so it starts a new block."""
_ROW = 16
_LABEL = 10  # width of the kind column: "client-log", "transport", "tx", ...
_INDENT = " " * (12 + 2 + _LABEL + 1)
_DIRECTION_WORDS = {"tx": "tx (to device)", "rx": "rx (from device)"}


def hexdump(data: bytes, *, rows: int | None = None) -> list[str]:
    """Offset, hex and printable-ASCII rows of ``data``; at most ``rows`` rows if given."""
    count = (len(data) + _ROW - 1) // _ROW
    shown = count if rows is None else min(rows, count)
    lines = []
    for row in range(shown):
        chunk = data[row * _ROW : (row + 1) * _ROW]
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{row * _ROW:04x}  {chunk.hex(' '):<{_ROW * 3 - 1}}  |{text}|")
    if shown < count:
        hidden = len(data) - shown * _ROW
        lines.append(f"... {hidden} more bytes (python -m harness trace --full shows them)")
    return lines


def _describe_header(number: int, header: Header) -> str:
    started = datetime.fromtimestamp(header.wall, tz=timezone.utc).isoformat(
        timespec="microseconds"
    )
    meta = ", ".join(f"{key} {value}" for key, value in header.meta.items())
    return f"== segment {number}: started {started}" + (f"; {meta}" if meta else "")


def _stamp(mono: float, origin: float) -> str:
    return f"{mono - origin:+12.6f}"


def _note_lines(stamp: str, note: Note) -> list[str]:
    first, *rest = note.text.split("\n")
    lines = [f"{stamp}  {note.kind:<{_LABEL}} {first}"]
    lines += [f"{_INDENT}{line}" for line in rest]
    return lines


@dataclass
class _Block:
    """Consecutive chunks of one direction shown together (see :func:`_blocks`)."""

    direction: Direction
    first: float
    last: float
    data: bytearray
    chunks: int = 1


def _blocks(body: list[Record], merge: bool) -> Iterator[Note | _Block]:
    """Notes as they are; wire chunks grouped while ``merge`` says so: same direction,
    nothing recorded in between, and each gap under MERGE_GAP_S."""
    block: _Block | None = None
    for record in body:
        if isinstance(record, WireBytes):
            if (
                merge
                and block is not None
                and block.direction == record.direction
                and record.mono - block.last < MERGE_GAP_S
            ):
                block.data += record.data
                block.last = record.mono
                block.chunks += 1
                continue
            if block is not None:
                yield block
            block = _Block(record.direction, record.mono, record.mono, bytearray(record.data))
            continue
        if block is not None:
            yield block
            block = None
        if isinstance(record, Note):
            yield record
    if block is not None:
        yield block


def _block_title(block: _Block) -> str:
    size = len(block.data)
    title = f"{size} byte{'s' if size != 1 else ''}"
    if block.chunks > 1:
        verb = "reads" if block.direction == "rx" else "writes"
        title += f" in {block.chunks} {verb} over {(block.last - block.first) * 1e3:.3f} ms"
    return title


def format_trace(trace: TraceFile, *, full: bool = False, chunks: bool = False) -> Iterator[str]:
    """The lines of the whole trace.

    ``full`` shows every byte instead of a preview. Unless ``chunks``, back-to-back reads
    (or writes) are shown as one block: an emulated UART often delivers a frame a byte per
    read, and forty one-byte lines would bury the frame. The decoded result is the same
    either way, since the unframer's output never depends on how the stream was split.
    """
    for warning in trace.warnings:
        yield f"warning: {warning}"
    for number, (header, body) in enumerate(iter_segments(trace), start=1):
        yield _describe_header(number, header)
        max_payload = header.meta.get("max_packet", DEFAULT_MAX_PAYLOAD)
        decoder = WireDecoder(max_payload if isinstance(max_payload, int) else DEFAULT_MAX_PAYLOAD)
        for item in _blocks(body, merge=not chunks):
            stamp = _stamp(item.mono if isinstance(item, Note) else item.first, header.mono)
            if isinstance(item, Note):
                yield from _note_lines(stamp, item)
                continue
            yield f"{stamp}  {item.direction:<{_LABEL}} {_block_title(item)}"
            data = bytes(item.data)
            for line in hexdump(data, rows=None if full else PREVIEW_ROWS):
                yield f"{_INDENT}{line}"
            for finding in decoder.feed(item.direction, data):
                yield f"{_INDENT}{finding.kind}: {finding.text}"
        for direction in DIRECTIONS:
            if decoder.pending(direction):
                yield (
                    f"{_INDENT}the segment ends inside a {_DIRECTION_WORDS[direction]} packet "
                    "(started, never completed)"
                )


def render(
    trace: TraceFile, *, full: bool = False, chunks: bool = False, tail: int | None = None
) -> str:
    """The formatted trace as one string; only its last ``tail`` lines if given."""
    lines = list(format_trace(trace, full=full, chunks=chunks))
    if tail is not None and len(lines) > tail:
        omitted = len(lines) - tail
        lines = [f"... {omitted} earlier lines omitted ...", *lines[-tail:]]
    return "\n".join(lines)


__all__ = ["MERGE_GAP_S", "PREVIEW_ROWS", "format_trace", "hexdump", "render"]
