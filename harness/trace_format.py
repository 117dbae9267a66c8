"""A wire trace as text a person reads: times, raw bytes, decoded frames, notes.

This is what ``python -m harness trace FILE`` prints and what a failed test's report shows.
Times are seconds since the segment's header (monotonic, so intervals are exact); the header
line gives the wall-clock start to line the trace up with other logs. Raw bytes are always
shown, with an ASCII column, because the decoded view only says what the bytes meant to a
correct receiver: when something is wrong, the bytes are the evidence.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

from harness.protocol.framing import DEFAULT_MAX_PAYLOAD
from harness.trace import DIRECTIONS, Header, Note, TraceFile, WireBytes, iter_segments
from harness.trace_decode import WireDecoder

PREVIEW_ROWS = 4
"""Hexdump rows shown per chunk unless ``full``; 16 bytes a row."""
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


def format_trace(trace: TraceFile, *, full: bool = False) -> Iterator[str]:
    """The lines of the whole trace; ``full`` shows every byte instead of a preview."""
    for warning in trace.warnings:
        yield f"warning: {warning}"
    for number, (header, body) in enumerate(iter_segments(trace), start=1):
        yield _describe_header(number, header)
        max_payload = header.meta.get("max_packet", DEFAULT_MAX_PAYLOAD)
        decoder = WireDecoder(max_payload if isinstance(max_payload, int) else DEFAULT_MAX_PAYLOAD)
        for record in body:
            stamp = _stamp(record.mono, header.mono)
            if isinstance(record, Note):
                yield from _note_lines(stamp, record)
                continue
            assert isinstance(record, WireBytes)
            size = len(record.data)
            yield f"{stamp}  {record.direction:<{_LABEL}} {size} byte{'s' if size != 1 else ''}"
            for line in hexdump(record.data, rows=None if full else PREVIEW_ROWS):
                yield f"{_INDENT}{line}"
            for finding in decoder.feed(record.direction, record.data):
                yield f"{_INDENT}{finding.kind}: {finding.text}"
        for direction in DIRECTIONS:
            if decoder.pending(direction):
                yield (
                    f"{_INDENT}the segment ends inside a {_DIRECTION_WORDS[direction]} packet "
                    "(started, never completed)"
                )


def render(trace: TraceFile, *, full: bool = False, tail: int | None = None) -> str:
    """The formatted trace as one string; only its last ``tail`` lines if given."""
    lines = list(format_trace(trace, full=full))
    if tail is not None and len(lines) > tail:
        omitted = len(lines) - tail
        lines = [f"... {omitted} earlier lines omitted ...", *lines[-tail:]]
    return "\n".join(lines)


__all__ = ["PREVIEW_ROWS", "format_trace", "hexdump", "render"]
