"""The wire trace: every byte to and from a device, with what happened around it, on disk.

When a device test fails in CI, the console log and the exception rarely say what was
actually on the wire. The trace does: each chunk the harness wrote or read, timestamped,
next to notes of harness events (a reset requested, a pipe swapped, a console line, a fault
injected). It is written as it happens, so it also holds the last words of a test that hung
or a harness that crashed.

The file is JSON Lines, one record per line, because it has to be:

* binary-safe: wire bytes are stored as hex, so 0x00, 0xFF and invalid UTF-8 round-trip
  exactly, and no byte of the device can break the file's structure;
* appendable and crash-proof: each record is one ``write`` of one complete line, flushed at
  once, so whatever was recorded before a crash is readable, and at worst the very last line
  is torn (the reader skips a torn last line and says so);
* readable without this project: ``jq`` or any JSON parser can read it.

Records (format version 1)::

    {"type": "header", "format": "uart-rpc-harness wire trace", "version": 1,
     "mono": 8123.4, "wall": 1760000000.0, "board": "host", "board_kind": "host",
     "max_packet": 2048, "pid": 4242}
    {"type": "bytes", "mono": 8123.5, "wall": 1760000000.1, "dir": "tx", "hex": "fefffd..."}
    {"type": "note", "mono": 8123.6, "wall": 1760000000.2, "kind": "reset", "text": "..."}

``dir`` is ``tx`` (host to device) or ``rx`` (device to host). ``mono`` is
``time.monotonic()`` (for intervals: it never jumps), ``wall`` is ``time.time()`` (to line the
trace up with CI logs). A new header starts a new segment (the same file reopened later).
Frames are not stored decoded: the raw bytes are the ground truth, and
:mod:`harness.trace_decode` rebuilds the frames from them offline, so recording costs the hot
path no decoding.
"""

from __future__ import annotations

import json
import os
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.errors import HarnessError

FORMAT_NAME = "uart-rpc-harness wire trace"
FORMAT_VERSION = 1
TRACE_FILE_NAME = "wire-trace.jsonl"
"""The trace's name inside a device's output folder."""

Direction = Literal["tx", "rx"]
DIRECTIONS: tuple[Direction, ...] = ("tx", "rx")
"""``tx``: bytes the harness sent to the device; ``rx``: bytes the device sent to the harness."""


class TraceFormatError(HarnessError):
    """A trace file is missing, or is not a wire trace, or has a corrupt record."""


class Trace:
    """Records wire bytes and notes to a trace file; safe to call from any thread.

    Every record is timestamped under one lock, so the order of lines in the file is the
    order in which the harness saw things, and ``mono`` never goes backwards in a segment.
    After :meth:`close` further records are dropped (a console pump thread may still be
    draining a dying device); ``dropped_after_close`` counts them.
    """

    def __init__(self, path: Path, **meta: Any) -> None:
        """Open ``path`` for appending and write a header carrying ``meta`` (board, ...)."""
        self.path = path
        self.dropped_after_close = 0
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: Any = path.open("ab", buffering=0)
        # Close the file when the Trace is garbage collected without close() (a target
        # made by harness.connect, say), instead of leaving that to an unclosed-file warning.
        self._finalizer = weakref.finalize(self, self._file.close)
        self._write(
            {
                "type": "header",
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
                **self._now(),
                **meta,
                "pid": os.getpid(),
            }
        )

    @staticmethod
    def _now() -> dict[str, float]:
        return {"mono": round(time.monotonic(), 6), "wall": round(time.time(), 6)}

    def _write(self, record: dict[str, Any]) -> None:
        self._write_line(json.dumps(record, ensure_ascii=True))

    def _write_line(self, line: str) -> None:
        self._file.write(line.encode("ascii") + b"\n")  # unbuffered: one write, in the OS at once

    def record(self, direction: Direction, data: bytes) -> None:
        """Record ``data`` as sent (``tx``) or received (``rx``) by the harness.

        This is on the path of every read and write, so the line is formatted directly
        (hex and a fixed direction need no JSON escaping; json.dumps would rescan the hex)
        and the hex is made outside the lock.
        """
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        if not data:
            return
        hexed = data.hex()
        with self._lock:
            if self._file.closed:
                self.dropped_after_close += 1
                return
            self._write_line(
                f'{{"type": "bytes", "mono": {time.monotonic():.6f}, "wall": {time.time():.6f}, '
                f'"dir": "{direction}", "hex": "{hexed}"}}'
            )

    def note(self, kind: str, text: str) -> None:
        """Record a harness event: ``kind`` says what sort (``reset``, ``console``, ``fault``,
        ``transport``, ``test``, ``client-log``, ...), ``text`` says what happened."""
        with self._lock:
            if self._file.closed:
                self.dropped_after_close += 1
                return
            self._write({"type": "note", **self._now(), "kind": str(kind), "text": str(text)})

    def close(self) -> None:
        """Stop recording and release the file; safe to call twice."""
        with self._lock:
            self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    """The start of a segment: when, by which process, for which board."""

    mono: float
    wall: float
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WireBytes:
    """One chunk of bytes as one read returned it or one write sent it."""

    mono: float
    wall: float
    direction: Direction
    data: bytes


@dataclass(frozen=True)
class Note:
    """A harness event."""

    mono: float
    wall: float
    kind: str
    text: str


Record = Header | WireBytes | Note


@dataclass(frozen=True)
class TraceFile:
    """A trace read back: its records in file order, and what the reader had to skip."""

    path: Path
    records: list[Record]
    warnings: list[str]


def read_trace(path: Path) -> TraceFile:
    """Read a trace file; raise TraceFormatError naming the line of the first bad record.

    A torn last line (the writer died mid-record) is skipped with a warning rather than an
    error: everything before it is intact, and that is the case a trace exists for.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise TraceFormatError(f"{path}: no such trace file") from None
    except OSError as exc:
        raise TraceFormatError(f"{path}: cannot read it: {exc}") from None
    lines = raw.split(b"\n")
    torn = lines.pop()  # b"" when the file ends with a newline, as every complete record does
    records: list[Record] = []
    warnings: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(_parse(path, number, line))
        except TraceFormatError as exc:
            if records:
                raise
            raise TraceFormatError(f"not a wire trace: {exc}") from None
    if torn.strip():
        try:
            records.append(_parse(path, len(lines) + 1, torn))
        except TraceFormatError as exc:
            warnings.append(f"skipped a torn last record (the writer stopped mid-line): {exc}")
    if not records or not isinstance(records[0], Header):
        raise TraceFormatError(
            f"{path}: not a wire trace: it does not start with a {FORMAT_NAME!r} header"
        )
    return TraceFile(path=path, records=records, warnings=warnings)


def _parse(path: Path, number: int, line: bytes) -> Record:
    where = f"{path}:{number}"
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TraceFormatError(f"{where}: not a JSON record ({exc})") from None
    if not isinstance(record, dict):
        raise TraceFormatError(f"{where}: a record must be a JSON object")
    kind = record.get("type")
    try:
        mono = float(record["mono"])
        wall = float(record["wall"])
        if kind == "header":
            return _header(where, record, mono, wall)
        if kind == "bytes":
            direction = record["dir"]
            if direction not in DIRECTIONS:
                raise TraceFormatError(f"{where}: direction {direction!r} is not tx or rx")
            return WireBytes(mono, wall, direction, bytes.fromhex(record["hex"]))
        if kind == "note":
            return Note(mono, wall, str(record["kind"]), str(record["text"]))
    except KeyError as exc:
        raise TraceFormatError(f"{where}: {kind} record without field {exc}") from None
    except (TypeError, ValueError) as exc:
        raise TraceFormatError(f"{where}: bad {kind} record: {exc}") from None
    raise TraceFormatError(f"{where}: unknown record type {kind!r}")


def _header(where: str, record: dict[str, Any], mono: float, wall: float) -> Header:
    if record.get("format") != FORMAT_NAME:
        raise TraceFormatError(f"{where}: header of format {record.get('format')!r}, not a trace")
    version = record.get("version")
    if version != FORMAT_VERSION:
        raise TraceFormatError(
            f"{where}: trace format version {version!r}; this harness reads {FORMAT_VERSION}"
        )
    skip = {"type", "format", "version", "mono", "wall"}
    return Header(mono, wall, {k: v for k, v in record.items() if k not in skip})


def iter_segments(trace: TraceFile) -> Iterator[tuple[Header, list[Record]]]:
    """The trace split at each header: one segment per time the file was opened."""
    header: Header | None = None
    body: list[Record] = []
    for record in trace.records:
        if isinstance(record, Header):
            if header is not None:
                yield header, body
            header, body = record, []
        else:
            body.append(record)
    if header is not None:
        yield header, body


__all__ = [
    "DIRECTIONS",
    "TRACE_FILE_NAME",
    "Direction",
    "Header",
    "Note",
    "Record",
    "Trace",
    "TraceFile",
    "TraceFormatError",
    "WireBytes",
    "iter_segments",
    "read_trace",
]
