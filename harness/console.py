"""The device's console UART: every byte kept, readable as lines or through pexpect.

A pump thread feeds what the console UART sends into a :class:`Console`, which never
blocks the producer (an unread UART can freeze a whole QEMU), keeps the full text for the
test report and a log file, and hands out pexpect spawns so tests can write
``device.console.expect(r"boot: .* reset-cause software")``. Each complete line also goes
to an ``on_line`` listener, which is how console lines land in the wire trace between the
RPC bytes they explain.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pexpect
import pexpect.spawnbase

from harness.errors import TargetError


class Console:
    """An append-only record of console output with blocking, deadline-bound readers."""

    def __init__(
        self, log_path: Path | None = None, *, on_line: Callable[[str], None] | None = None
    ) -> None:
        """``on_line`` is called with each complete line (without its line ending), from the
        thread that feeds the console; a partial last line is passed on at :meth:`close`."""
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._data = bytearray()
        self._closed = False
        self._log = log_path.open("ab") if log_path is not None else None
        self._default_spawn: ConsoleSpawn | None = None
        self._on_line = on_line
        self._line_start = 0  # offset in _data of the first byte not yet passed to on_line

    # -- producer side ---------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Append bytes received from the console UART (called by a pump thread)."""
        if not data:
            return
        with self._lock:
            self._data += data
            if self._log is not None:
                self._log.write(data)
                self._log.flush()
            self._changed.notify_all()
            lines = self._take_lines(final=False)
        self._emit(lines)

    def _take_lines(self, *, final: bool) -> list[bytes]:
        """Complete lines not yet passed on (and, if ``final``, the partial last one)."""
        if self._on_line is None:
            return []
        end = self._data.rfind(b"\n", self._line_start) + 1
        if final:
            end = len(self._data)
        if end <= self._line_start:
            return []
        chunk = bytes(self._data[self._line_start : end])
        self._line_start = end
        return chunk.removesuffix(b"\n").split(b"\n")

    def _emit(self, lines: list[bytes]) -> None:
        # Outside the lock: a listener must never be able to stall the producer's lock.
        if self._on_line is not None:
            for line in lines:
                self._on_line(line.rstrip(b"\r").decode("utf-8", errors="replace"))

    def append(self, line: str) -> None:
        """Append one line of text (for consoles that arrive line by line)."""
        self.feed(line.encode("utf-8", errors="replace") + b"\n")

    def close(self) -> None:
        """The console UART is gone; readers waiting for more see end of file."""
        with self._lock:
            self._closed = True
            if self._log is not None:
                self._log.close()
                self._log = None
            self._changed.notify_all()
            lines = self._take_lines(final=True)
        self._emit(lines)

    def reopen(self) -> None:
        """A new console stream follows (a power-cycled device); keep the text so far."""
        with self._lock:
            self._closed = False

    # -- reader side ---------------------------------------------------------------------------

    def text(self) -> str:
        with self._lock:
            return self._data.decode("utf-8", errors="replace")

    def lines(self) -> list[str]:
        return self.text().splitlines()

    def __len__(self) -> int:
        """Number of complete lines so far; pass it as ``start`` to ``wait_for``."""
        with self._lock:
            return self._data.count(b"\n")

    def wait_for(self, needle: str, timeout: float, *, start: int = 0) -> str:
        """Block until a line at index >= ``start`` contains ``needle``; return it, or raise."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                lines = self._data.decode("utf-8", errors="replace").split("\n")
                for line in lines[start:]:
                    if needle in line:
                        return line.rstrip("\r")
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    tail = "\n".join(lines[-10:]) or "(nothing)"
                    why = "the console closed" if self._closed else f"{timeout:.1f}s passed"
                    raise TargetError(
                        f"console line containing {needle!r} not seen ({why}); last lines:\n{tail}"
                    )
                self._changed.wait(remaining)

    def read_from(self, offset: int, size: int, timeout: float) -> bytes | None:
        """Up to ``size`` bytes from ``offset``; b"" on timeout, None at end of file."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._data) <= offset:
                if self._closed:
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return b""
                self._changed.wait(remaining)
            return bytes(self._data[offset : offset + size])

    def spawn(self, *, from_start: bool = True, timeout: float = 10.0) -> ConsoleSpawn:
        """A new pexpect reader over this console (from the first byte, or from now)."""
        with self._lock:
            offset = 0 if from_start else len(self._data)
        return ConsoleSpawn(self, offset, timeout=timeout)

    def expect(self, pattern: object, timeout: float = 10.0) -> int:
        """pexpect's ``expect`` on a reader that persists across calls (from the first byte)."""
        if self._default_spawn is None:
            self._default_spawn = self.spawn()
        return self._default_spawn.expect(pattern, timeout=timeout)

    @property
    def match(self) -> object:
        """The match object of the last ``expect``."""
        return None if self._default_spawn is None else self._default_spawn.match


class ConsoleSpawn(pexpect.spawnbase.SpawnBase):
    """A pexpect spawn whose "child" is a Console: expect(), before, after, match all work."""

    def __init__(self, console: Console, offset: int, *, timeout: float) -> None:
        super().__init__(timeout=timeout, encoding="utf-8", codec_errors="replace")
        self._console = console
        self._offset = offset
        self.child_fd = -1
        self.closed = False

    def read_nonblocking(self, size: int = 1, timeout: float | None = -1) -> str:
        if timeout == -1:
            timeout = self.timeout
        data = self._console.read_from(self._offset, size, 3600.0 if timeout is None else timeout)
        if data is None:
            self.flag_eof = True
            raise pexpect.EOF("the device console closed")
        if not data:
            raise pexpect.TIMEOUT("no console output within the timeout")
        self._offset += len(data)
        text = self._decoder.decode(data, final=False)
        self._log(text, "read")
        return text

    def isalive(self) -> bool:
        return not self.flag_eof
