"""End-to-end smoke test of ``build/host/rpc_host_server`` over real pipes.

Deadlines on every read (select), no sleeps. Frames are decoded with the Python framing when it
is importable, else with the C unframer through ctypes.
"""

from __future__ import annotations

import json
import os
import select
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit import c_library as c

DEADLINE_S = 10.0

try:
    from harness.protocol.framing import Unframer, encode_packet
except Exception:  # the Python protocol package is not usable yet: use the C side
    Unframer = None  # type: ignore[assignment,misc]
    encode_packet = None  # type: ignore[assignment]


def _unframer() -> object:
    if Unframer is not None:
        return Unframer(max_payload=c.max_packet())
    return c.CUnframer(c.max_packet())


def _encode(payload: bytes, *, nop: bool = False) -> bytes:
    if encode_packet is not None:
        return encode_packet(payload, nop=nop)
    return c.frame(payload, nop=nop)


class HostServer:
    """One rpc_host_server process and a frame reader with deadlines."""

    def __init__(self, binary: Path, boot_count_file: Path) -> None:
        self.process = subprocess.Popen(
            [str(binary), "--board", "host", "--boot-count-file", str(boot_count_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
        )
        self._unframer = _unframer()
        self._pending: list[bytes] = []
        self._first = True

    def send(self, payload: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(_encode(payload, nop=self._first))
        self._first = False

    def read_message(self, timeout: float = DEADLINE_S) -> bytes:
        """Next frame payload from the server, or fail after ``timeout`` seconds."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while not self._pending:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.process.stdout], [], [], max(left, 0))
            if not ready:
                pytest.fail(f"no frame from the host server within {timeout}s")
            chunk = os.read(self.process.stdout.fileno(), 4096)
            if not chunk:
                pytest.fail(f"host server closed stdout (exit {self.process.poll()})")
            self._pending.extend(self._unframer.feed(chunk))  # type: ignore[attr-defined]
        return self._pending.pop(0)

    def call(self, session_id: int, request: bytes) -> bytes:
        self.send(struct.pack("<HB", session_id, 0x10) + request)
        reply = self.read_message()
        assert reply[:3] == struct.pack("<HB", session_id, 0x10)
        return reply[3:]

    def stop(self) -> tuple[int, str]:
        """Close stdin (EOF) and return (exit status, console text)."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            code = self.process.wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail("host server did not exit within the deadline after EOF")
        assert self.process.stderr is not None
        console = self.process.stderr.read().decode(errors="replace")
        self.process.stdout.close()  # type: ignore[union-attr]
        self.process.stderr.close()
        return code, console


@pytest.fixture(scope="module")
def binary() -> Path:
    c.ensure_built()
    path = c.build_dir() / "rpc_host_server"
    assert path.exists(), f"{path} was not built"
    return path


@pytest.fixture
def server_factory(binary: Path, tmp_path: Path) -> Iterator[object]:
    started: list[HostServer] = []

    def start() -> HostServer:
        server = HostServer(binary, tmp_path / "boot_count")
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def _expect_boot(server: HostServer) -> str:
    assert server.read_message() == b"\x00\x00\x02"  # wake-up: TerminateSession, id 0
    log = server.read_message()
    assert log[:3] == b"\x00\x00\x03"
    return log[3:].decode()


def _packet(code: int, body: bytes) -> bytes:
    return struct.pack("<Qi", 4 + len(body), code) + body


def _info(server: HostServer, session_id: int) -> dict[str, object]:
    reply = server.call(session_id, _packet(3, struct.pack("<Qi", 3, 0)))
    _nbytes, code, num, type_code, length = struct.unpack_from("<QiiiQ", reply)
    assert (code, num, type_code) == (4, 1, 11)
    return json.loads(reply[28 : 28 + length])


def _handshake(server: HostServer, nonce: int) -> int:
    server.send(struct.pack("<HB", nonce, 0) + b"\x01")
    reply = server.read_message()
    session_id, kind = struct.unpack_from("<HB", reply)
    assert kind == 1 and reply[3:] == b"\x01"
    assert session_id & 0xFF == nonce and session_id >> 8 != 0
    return session_id


def test_boot_count_increments_across_starts(server_factory, tmp_path: Path) -> None:
    for expected in (1, 2):
        server = server_factory()
        boot_line = _expect_boot(server)
        assert boot_line.startswith("boot: firmware ")
        assert boot_line.endswith(" board host reset-cause power-on")
        session_id = _handshake(server, 0x42)
        info = _info(server, session_id)
        assert info["boot_count"] == expected
        assert info["board"] == "host" and info["reset_cause"] == "power-on"
        assert info["max_packet"] == c.max_packet()
        code, console = server.stop()
        assert code == 0, console
        assert boot_line in console
        assert f"session established id=0x{session_id:04x}" in console
    assert (tmp_path / "boot_count").read_text().strip() == "2"


def test_rpc_reset_restarts_in_place(server_factory) -> None:
    server = server_factory()
    _expect_boot(server)
    session_id = _handshake(server, 0x11)
    boot_id = _info(server, session_id)["boot_id"]
    pid = server.process.pid

    # rpc.reset (handle 7): no reply, then the wake-up packet of the restarted firmware.
    server.send(struct.pack("<HB", session_id, 0x10) + _packet(3, struct.pack("<Qi", 7, 0)))
    boot_line = _expect_boot(server)
    assert boot_line.endswith("reset-cause software")
    assert server.process.poll() is None and server.process.pid == pid

    # The old session is gone: a Normal with its id is ignored, a new handshake works.
    server.send(struct.pack("<HB", session_id, 0x10) + _packet(3, struct.pack("<Qi", 3, 0)))
    new_id = _handshake(server, 0x12)
    info = _info(server, new_id)
    assert info["boot_count"] == 2 and info["reset_cause"] == "software"
    assert info["boot_id"] != boot_id
    code, console = server.stop()
    assert code == 0, console
    assert "reset requested" in console
