"""The wire trace: recording, reading back byte-exact, decoding offline, the CLI, and the
hooks that feed it (the swappable transport and the console)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.__main__ import main
from harness.console import Console
from harness.errors import TransportClosedError
from harness.protocol import rpc
from harness.protocol.framing import encode_packet
from harness.protocol.session import MessageType, encode_message
from harness.trace import (
    Header,
    Note,
    Trace,
    TraceFormatError,
    WireBytes,
    iter_segments,
    read_trace,
)
from harness.trace_format import MERGE_GAP_S, format_trace, render
from harness.transport.fd import FdTransport
from harness.transport.swappable import SwappableTransport

EVERY_BYTE = bytes(range(256))
SESSION = 0x3412


def _frame(msg_type: MessageType, body: bytes = b"", session_id: int = SESSION) -> bytes:
    return encode_packet(encode_message(session_id, msg_type, body))


def _lines(path: Path, *, chunks: bool = False) -> str:
    return "\n".join(format_trace(read_trace(path), chunks=chunks))


# --- recording and reading back -------------------------------------------------------------


def test_bytes_and_notes_read_back_exactly(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    trace = Trace(path, board="b", max_packet=128)
    awkward = b"\x00\xff\xff\xfd\x00\n\r\x00" + EVERY_BYTE + b"\xff"
    trace.record("tx", awkward)
    trace.record("rx", EVERY_BYTE)
    trace.record("rx", b"")  # nothing happened: nothing recorded
    trace.note("reset", "reset hard requested")
    trace.note("console", 'line with "quotes", a\ttab, é and a \x00 NUL')
    trace.close()

    read = read_trace(path)
    assert read.warnings == []
    header, *body = read.records
    assert isinstance(header, Header)
    assert header.meta == {"board": "b", "max_packet": 128, "pid": os.getpid()}
    assert body == [
        WireBytes(body[0].mono, body[0].wall, "tx", awkward),
        WireBytes(body[1].mono, body[1].wall, "rx", EVERY_BYTE),
        Note(body[2].mono, body[2].wall, "reset", "reset hard requested"),
        Note(body[3].mono, body[3].wall, "console", 'line with "quotes", a\ttab, é and a \x00 NUL'),
    ]
    monos = [record.mono for record in read.records]
    assert monos == sorted(monos)
    # One record per line, whatever the bytes: nothing in the data can split a record.
    assert len(path.read_bytes().splitlines()) == 5


def test_direction_must_be_tx_or_rx(tmp_path: Path) -> None:
    trace = Trace(tmp_path / "t.jsonl")
    with pytest.raises(ValueError, match="tx"):
        trace.record("up", b"x")  # type: ignore[arg-type]
    trace.close()


def test_records_from_many_threads_stay_whole_and_ordered(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    trace = Trace(path)
    chunk = b"\xff" * 3000  # long lines: a torn or interleaved write would show

    def hammer(index: int) -> None:
        for _ in range(200):
            trace.record("rx" if index % 2 else "tx", chunk)
            trace.note("thread", str(index))

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()
    trace.close()
    records = read_trace(path).records[1:]
    assert len(records) == 4 * 200 * 2
    assert all(r.data == chunk for r in records if isinstance(r, WireBytes))
    monos = [record.mono for record in records]
    assert monos == sorted(monos)


def test_after_close_records_are_dropped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    trace = Trace(path)
    trace.close()
    trace.close()
    trace.record("rx", b"late console pump")
    trace.note("console", "late")
    assert trace.closed
    assert trace.dropped_after_close == 2
    assert len(read_trace(path).records) == 1


def test_reopening_a_file_appends_a_new_segment(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    first = Trace(path, board="one")
    first.record("tx", b"\x01")
    first.close()
    second = Trace(path, board="two")
    second.record("rx", b"\x02")
    second.close()
    segments = list(iter_segments(read_trace(path)))
    assert [header.meta["board"] for header, _ in segments] == ["one", "two"]
    assert [[r.data for r in body if isinstance(r, WireBytes)] for _, body in segments] == [
        [b"\x01"],
        [b"\x02"],
    ]


def test_a_torn_last_line_is_skipped_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    trace = Trace(path)
    trace.record("rx", b"\xfe\xff")
    trace.close()
    with path.open("ab") as file:
        file.write(b'{"type": "bytes", "mono": 1.0, "wall": 2.0, "dir": "rx", "hex": "ff')
    read = read_trace(path)
    assert [r.data for r in read.records if isinstance(r, WireBytes)] == [b"\xfe\xff"]
    assert len(read.warnings) == 1
    assert "torn last record" in read.warnings[0]
    assert "torn last record" in _lines(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a wire trace"),
        (b"hello\n", r"not a wire trace: .*:1: not a JSON record"),
        (b'{"type": "note", "mono": 1, "wall": 1, "kind": "k", "text": "t"}\n', "header"),
        (b'{"type": "header", "format": "other", "version": 1, "mono": 1, "wall": 1}\n', "other"),
        (
            b'{"type": "header", "format": "uart-rpc-harness wire trace", "version": 99, '
            b'"mono": 1, "wall": 1}\n',
            "version 99",
        ),
    ],
)
def test_files_that_are_not_traces_are_refused(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(content)
    with pytest.raises(TraceFormatError, match=message):
        read_trace(path)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"{not json", r":3: not a JSON record"),
        (b"[1, 2]", r":3: a record must be a JSON object"),
        (b'{"type": "bytes", "mono": 1, "wall": 1, "dir": "rx", "hex": "zz"}', r":3: bad bytes"),
        (b'{"type": "bytes", "mono": 1, "wall": 1, "dir": "up", "hex": "00"}', r":3: direction"),
        (
            b'{"type": "bytes", "mono": 1, "wall": 1, "hex": "00"}',
            r":3: bytes record without field 'dir'",
        ),
        (b'{"type": "mystery", "mono": 1, "wall": 1}', r":3: unknown record type 'mystery'"),
    ],
)
def test_a_corrupt_record_names_its_line(tmp_path: Path, line: bytes, message: str) -> None:
    path = tmp_path / "t.jsonl"
    trace = Trace(path)
    trace.record("tx", b"ok")
    trace.close()
    with path.open("ab") as file:
        file.write(line + b"\n")
        file.write(b'{"type": "note", "mono": 1, "wall": 1, "kind": "k", "text": "after"}\n')
    with pytest.raises(TraceFormatError, match=message):
        read_trace(path)


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(TraceFormatError, match="no such trace file"):
        read_trace(tmp_path / "nope.jsonl")


# --- decoding and pretty-printing ---------------------------------------------------------------


def _conversation(path: Path) -> None:
    """A handshake, a lookup, a call and its reply, a log and an exception, cut oddly."""
    trace = Trace(path, board="host", max_packet=2048)
    init = b"\xfe" + _frame(MessageType.START_SESSION_INIT, b"\x01", session_id=0x12)
    trace.record("tx", init)
    reply = _frame(MessageType.START_SESSION_REPLY, b"\x01", session_id=SESSION)
    trace.record("rx", reply[:5])  # a frame split across two reads
    trace.note("reset", "reset hard requested")
    trace.record("rx", reply[5:])
    trace.record("tx", _frame(MessageType.NORMAL, rpc.encode_get_global_func("rpc.add")))
    trace.record("rx", _frame(MessageType.NORMAL, rpc.encode_return(rpc.FunctionHandle(3))))
    trace.record("tx", _frame(MessageType.NORMAL, rpc.encode_call(3, [2, 3])))
    trace.record(
        "rx",
        _frame(MessageType.LOG, "héllo".encode(), session_id=0)
        + _frame(MessageType.NORMAL, rpc.encode_return(5)),
    )
    trace.record("tx", _frame(MessageType.NORMAL, rpc.encode_call(4, [b"\xff\x00" * 40, "s"])))
    trace.record("rx", _frame(MessageType.NORMAL, rpc.encode_exception("boom")))
    trace.record("rx", _frame(MessageType.TERMINATE_SESSION, session_id=0))
    trace.close()


def test_frames_are_decoded_where_their_last_byte_arrived(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    _conversation(path)
    text = _lines(path)
    expected_in_order = [
        "board host",
        "frame: StartSessionInit id 0x0012 version 01",
        "reset hard requested",
        "frame: StartSessionReply id 0x3412 version 01",
        "frame: Normal id 0x3412 GetGlobalFunc('rpc.add')",
        "frame: Normal id 0x3412 Return(handle 3)",
        "frame: Normal id 0x3412 CallFunc(handle 3; int 2, int 3)",
        "frame: Log id 0x0000 'héllo'",
        "frame: Normal id 0x3412 Return(int 5)",
        "frame: Normal id 0x3412 CallFunc(handle 4; bytes[80] ff 00 ff 00",
        "str 's')",
        "frame: Normal id 0x3412 Exception('boom')",
        "frame: TerminateSession id 0x0000",
    ]
    position = 0
    for needle in expected_in_order:
        found = text.find(needle, position)
        assert found >= 0, f"{needle!r} missing (or out of order) in:\n{text}"
        position = found
    # The split reply: the first read completes nothing, the second completes the frame.
    lines = text.splitlines()
    first_part = next(i for i, line in enumerate(lines) if line.endswith("rx         5 bytes"))
    assert not lines[first_part + 2].strip().startswith("frame:")
    assert "noise" not in text and "drop" not in text


def test_raw_bytes_are_shown_with_a_preview_or_in_full(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    trace = Trace(path)
    trace.record("rx", EVERY_BYTE)
    trace.close()
    preview = _lines(path)
    assert "0000  00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f  |................|" in preview
    assert "0030  30 31 32 33" in preview
    assert "0040  40 41" not in preview  # (a timestamp may contain the digits 0040)
    assert "192 more bytes" in preview
    full = "\n".join(format_trace(read_trace(path), full=True))
    assert "00f0  f0 f1 f2 f3 f4 f5 f6 f7 f8 f9 fa fb fc fd fe ff  |................|" in full
    assert "0040  40 41 42 43 44 45 46 47 48 49 4a 4b 4c 4d 4e 4f  |@ABCDEFGHIJKLMNO|" in full
    assert "more bytes" not in full


def test_garbage_on_the_wire_is_shown_as_such(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    trace = Trace(path, max_packet=64)
    good = _frame(MessageType.NORMAL, rpc.encode_return(1))
    bad_crc = good[:-1] + bytes([good[-1] ^ 0x01])
    trace.record("rx", b"boot noise\r\n" + bad_crc)
    trace.record("rx", encode_packet(b"\x00"))  # shorter than a session header
    trace.record("rx", encode_packet(b"\x00\x00\x7f"))  # unknown message type
    trace.record("rx", _frame(MessageType.NORMAL, b"\x01\x02"))  # RPC packet too short
    trace.record("rx", _frame(MessageType.NORMAL, rpc.encode_return(1)[:-3]))  # truncated
    trace.record("rx", _frame(MessageType.NORMAL, b"\x04" + b"\x00" * 7 + b"\x63\x00\x00\x00"))
    trace.record("rx", encode_packet(b"\x00" * 65))  # over max_packet: dropped as too long
    trace.record("rx", b"\xff\xfd\x05\x00\xff\x01")  # invalid escape inside the length
    trace.record("tx", b"\xff\xfd\x10\x00\x00\x00abc")  # cut off: never completed
    trace.close()
    text = _lines(path, chunks=True)  # each finding under the chunk that caused it
    for needle in [
        "noise: 12 bytes outside any packet",
        "drop: packet dropped: bad CRC",
        "not a session message: session message of 1 bytes is shorter than the 3-byte header",
        "not a session message: unknown session message type 0x7f",
        "malformed RPC packet: 2 bytes, shorter than its 12-byte header",
        "malformed RPC packet (code 4)",
        "RPC packet with unknown code 99",
        "drop: packet dropped: declared length too long",
        "drop: packet dropped: invalid escape",
        "the segment ends inside a tx (to device) packet",
    ]:
        assert needle in text, f"{needle!r} missing in:\n{text}"
    assert "frame: Normal id 0x3412 Return(int 1)" not in text  # the corrupted one


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(st.tuples(st.sampled_from(["tx", "rx"]), st.binary(max_size=300))))
def test_any_bytes_at_all_format_without_an_exception(
    tmp_path_factory: pytest.TempPathFactory, chunks: list[tuple[str, bytes]]
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "t.jsonl"
    trace = Trace(path, max_packet=64)
    for direction, data in chunks:
        # Frame starts and escapes make the unframer take its rarer paths.
        trace.record(direction, data.replace(b"\x01", b"\xff\xfd"))  # type: ignore[arg-type]
    trace.close()
    read = read_trace(path)
    lines = list(format_trace(read, full=True, chunks=True))
    assert len(lines) >= 1 + len([c for c in chunks if c[1]])
    assert list(format_trace(read))  # merged blocks too


def _write_records(path: Path, records: list[dict[str, object]]) -> None:
    """A trace file written by hand, for exact timestamps."""
    header = {"type": "header", "format": "uart-rpc-harness wire trace", "version": 1}
    lines = [{**header, "mono": 100.0, "wall": 1.0}, *records]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def _rx(mono: float, data: bytes) -> dict[str, object]:
    return {"type": "bytes", "mono": mono, "wall": 1.0, "dir": "rx", "hex": data.hex()}


def test_back_to_back_reads_are_shown_as_one_block(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    frame = b"\xfe" + _frame(MessageType.TERMINATE_SESSION, session_id=0)
    gap = MERGE_GAP_S * 2
    records = [_rx(100.0 + i * 0.0001, frame[i : i + 1]) for i in range(len(frame))]
    records += [
        _rx(100.01, b"\xff\xfd\x03"),
        _rx(100.01 + gap, b"\x00\x00\x00"),  # a pause: a new block
        {"type": "note", "mono": 100.03, "wall": 1.0, "kind": "k", "text": "between"},
        _rx(100.0301, b"\x00\x00\x02"),  # after a note: a new block
    ]
    _write_records(path, records)
    merged = "\n".join(format_trace(read_trace(path)))
    assert "+0.000000  rx         12 bytes in 12 reads over 1.100 ms" in merged
    assert "noise" not in merged  # the leading FE arrived alone, but is not noise
    assert "frame: TerminateSession id 0x0000" in merged
    assert "+0.010000  rx         3 bytes\n" in merged
    assert f"{0.01 + gap:+12.6f}  rx         3 bytes\n" in merged
    assert "+0.030100  rx         3 bytes\n" in merged
    chunked = "\n".join(format_trace(read_trace(path), chunks=True))
    assert chunked.count(" rx         1 byte\n") == 12
    assert "reads over" not in chunked
    assert "frame: TerminateSession id 0x0000" in chunked


def test_render_keeps_the_end_when_told_to(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    trace = Trace(path)
    for index in range(50):
        trace.note("step", f"number {index}")
    trace.close()
    text = render(read_trace(path), tail=10)
    lines = text.splitlines()
    assert lines[0] == "... 41 earlier lines omitted ..."
    assert lines[-1].endswith("number 49")
    assert len(lines) == 11


def test_multi_line_notes_stay_indented(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    trace = Trace(path)
    trace.note("test", "failed: first\nsecond")
    trace.close()
    lines = _lines(path).splitlines()
    assert lines[1].endswith("test       failed: first")
    assert lines[2] == " " * 25 + "second"


# --- the CLI ------------------------------------------------------------------------------------


def test_cli_prints_a_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.jsonl"
    _conversation(path)
    assert main(["trace", str(path)]) == 0
    out = capsys.readouterr().out
    assert "CallFunc(handle 3; int 2, int 3)" in out


def test_cli_missing_file_is_exit_1_with_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["trace", str(tmp_path / "gone.jsonl")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"error: {tmp_path / 'gone.jsonl'}: no such trace file" in captured.err


def test_cli_corrupt_file_is_exit_1_and_prints_nothing_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.jsonl"
    _conversation(path)
    with path.open("ab") as file:
        file.write(b"\x00\x01 not json\n{}\n")
    assert main(["trace", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "not a JSON record" in captured.err
    assert f"{path}:" in captured.err


def test_python_dash_m_harness_trace_end_to_end(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    _conversation(path)
    ok = subprocess.run(
        [sys.executable, "-m", "harness", "trace", "--full", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert "Exception('boom')" in ok.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "harness", "trace", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1
    assert "no such trace file" in missing.stderr
    usage = subprocess.run(
        [sys.executable, "-m", "harness", "trace"], capture_output=True, text=True, timeout=60
    )
    assert usage.returncode == 2
    assert "file" in usage.stderr


# --- what feeds the trace ---------------------------------------------------------------------


def _pipes() -> tuple[FdTransport, int, int]:
    to_us_r, to_us_w = os.pipe()
    from_us_r, from_us_w = os.pipe()
    return FdTransport(to_us_r, from_us_w, name="pipes"), to_us_w, from_us_r


def test_swappable_transport_records_every_byte_and_each_swap(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    trace = Trace(path)
    first, first_w, first_r = _pipes()
    swappable = SwappableTransport(name="dev", observer=trace)
    swappable.replace(first)
    swappable.write(EVERY_BYTE)
    assert os.read(first_r, 512) == EVERY_BYTE
    os.write(first_w, b"\x00\xff\xfd")
    assert swappable.read(5.0) == b"\x00\xff\xfd"
    assert swappable.read(0.0) == b""  # nothing arrived: nothing recorded
    second, second_w, second_r = _pipes()
    swappable.replace(None)
    swappable.replace(second)
    os.write(second_w, b"after")
    assert swappable.read(5.0) == b"after"
    os.close(second_w)  # the device end dies while attached: a real failure, noted
    with pytest.raises(TransportClosedError):
        swappable.read(5.0)
    swappable.close()
    swappable.close()
    first.close()
    for fd in (first_w, first_r, second_r):
        os.close(fd)
    trace.close()
    body = read_trace(path).records[1:]
    summary = [
        (r.direction, r.data) if isinstance(r, WireBytes) else (r.kind, r.text) for r in body
    ]
    assert summary[:6] == [
        ("transport", "attached pipes"),
        ("tx", EVERY_BYTE),
        ("rx", b"\x00\xff\xfd"),
        ("transport", "detached pipes"),
        ("transport", "attached pipes"),
        ("rx", b"after"),
    ]
    assert summary[6][0] == "transport" and summary[6][1].startswith("read failed: ")
    assert summary[7:] == [("transport", "closed")]


def test_a_failed_write_is_recorded_and_noted(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    trace = Trace(path)
    transport, far_w, far_r = _pipes()
    swappable = SwappableTransport(transport, observer=trace)
    os.close(far_r)
    with pytest.raises(TransportClosedError):
        swappable.write(b"\x01" * 100000)
    swappable.close()
    os.close(far_w)
    trace.close()
    body = read_trace(path).records[1:]
    assert isinstance(body[0], WireBytes) and body[0].data == b"\x01" * 100000
    assert isinstance(body[1], Note)
    assert body[1].text.startswith("write of 100000 bytes failed: ")


def test_console_lines_go_to_the_listener_whole(tmp_path: Path) -> None:
    lines: list[str] = []
    console = Console(tmp_path / "console.log", on_line=lines.append)
    console.feed(b"boot: fir")
    assert lines == []
    console.feed(b"mware 1\r\nsecond\n\nthi")
    assert lines == ["boot: firmware 1", "second", ""]
    console.feed(b"rd \xff\xfe bytes")
    console.close()
    assert lines == ["boot: firmware 1", "second", "", "third \ufffd\ufffd bytes"]
    console.close()
    assert len(lines) == 4
    assert (tmp_path / "console.log").read_bytes() == (
        b"boot: firmware 1\r\nsecond\n\nthird \xff\xfe bytes"
    )


def test_trace_file_is_plain_json_lines(tmp_path: Path) -> None:
    """Readable without the harness: every line is a JSON object with a type."""
    path = tmp_path / "t.jsonl"
    _conversation(path)
    for line in path.read_text(encoding="ascii").splitlines():
        record = json.loads(line)
        assert record["type"] in ("header", "bytes", "note")
        assert isinstance(record["mono"], float) and isinstance(record["wall"], float)
