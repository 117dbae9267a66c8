"""The `host` board: the portable C server as a POSIX process speaking on stdin/stdout.

It is the whole device stack minus the UART, so the protocol, the session rules, the
resets and the harness itself can be tested in milliseconds before any emulator or board
is involved. Its stderr plays the part of the console UART.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

from harness.build import HostArtifacts, build_host
from harness.errors import ConfigError, TargetError
from harness.targets.base import Target
from harness.transport.fd import FdTransport

_STOP_GRACE_S = 5.0
RESET_PIN = signal.SIGUSR1
"""The signal the host server takes as its reset pin (see zephyr_app/host/main.c)."""


def spawn_host_server(
    server: Path,
    board_name: str,
    boot_count_file: Path,
    **popen: Any,
) -> subprocess.Popen[bytes]:
    """Start ``rpc_host_server`` the one way it must be started, wherever its line goes.

    The reset pin (SIGUSR1) starts out held, as the server expects: a hard reset asked for
    while it boots then waits for its handler instead of killing it. The mask is this
    thread's own and the child inherits it; it is restored at once. ``popen`` says where the
    server's stdin, stdout and stderr go (pipes, a pty) and anything else for Popen.
    """
    command = [str(server), "--board", board_name, "--boot-count-file", str(boot_count_file)]
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {RESET_PIN})
    try:
        return subprocess.Popen(command, **popen)
    except OSError as exc:
        raise TargetError(f"cannot start {command[0]}: {exc}") from exc
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


class HostTarget(Target):
    """Runs ``rpc_host_server``; a power reset kills it and starts a new process, a hard reset
    signals its reset pin, and rpc/fatal resets are the server's own (it re-executes itself)."""

    _artifacts: HostArtifacts | None = None
    _process: subprocess.Popen[bytes] | None = None
    _exit_notes: list[str]
    _console_thread: threading.Thread

    def build(self) -> None:
        self._artifacts = build_host(self.board, self.build_root)

    @property
    def artifacts(self) -> HostArtifacts:
        if self._artifacts is None:
            raise TargetError("the host target was not built: call build() first")
        return self._artifacts

    @property
    def boot_count_file(self) -> Path:
        return self.work_dir / "boot_count"

    def start(self) -> None:
        self._exit_notes = []
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.boot_pending = True
        self.transport.replace(self._spawn())

    def _spawn(self) -> FdTransport:
        env = dict(os.environ)
        # Sanitizer builds: make every report fatal and visible on the console stream.
        env.setdefault("ASAN_OPTIONS", "abort_on_error=0:halt_on_error=1:detect_leaks=1")
        env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
        process = spawn_host_server(
            self.artifacts.server,
            self.board.name,
            self.boot_count_file,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            env=env,
        )
        assert process.stdin is not None and process.stdout is not None
        self._process = process
        self._console_thread = threading.Thread(
            target=self._pump_console, args=(process,), name="host-console", daemon=True
        )
        self._console_thread.start()
        return FdTransport(
            process.stdout.fileno(),
            process.stdin.fileno(),
            name=f"{self.board.name} pid {process.pid}",
            owns_fds=False,
        )

    def _pump_console(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        fd = process.stderr.fileno()
        try:
            while chunk := os.read(fd, 4096):
                self.console.feed(chunk)
        except (OSError, ValueError):
            return  # the pipe was closed under us: the process is gone

    def _physical_reset(self, kind: str) -> None:
        if kind == "hard":
            self._assert_reset_pin()
            return
        if kind != "power":
            raise ConfigError(
                f"the host target cannot do a {kind!r} reset (it can do rpc, fatal, hard, power)"
            )
        old_transport = self.transport.replace(None)
        self._kill(expected=True)
        # Power loss forgets everything a real board keeps in RAM: the boot count with it.
        self.boot_count_file.unlink(missing_ok=True)
        if old_transport is not None:
            old_transport.close()
        self.transport.replace(self._spawn())

    def _assert_reset_pin(self) -> None:
        """The host board's reset pin: the server restarts itself in place, keeping its
        "RAM" (the boot count file), and reports the cause reset-pin."""
        process = self._process
        if process is None or process.poll() is not None:
            raise TargetError(f"hard reset: the host server is not running. {self.post_mortem()}")
        process.send_signal(RESET_PIN)

    def _kill(self, *, expected: bool) -> int | None:
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        code = process.wait(timeout=_STOP_GRACE_S)
        # The console pump reads until end of file; let it finish before closing its pipe.
        self._console_thread.join(timeout=_STOP_GRACE_S)
        self._close_pipes(process)
        if not expected:
            self._exit_notes.append(f"process {process.pid} exited with {code}")
        return code

    @staticmethod
    def _close_pipes(process: subprocess.Popen[bytes]) -> None:
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def exit_code(self) -> int | None:
        """The exit status if the server is no longer running, else None."""
        return None if self._process is None else self._process.poll()

    def post_mortem(self) -> str:
        code = self.exit_code()
        state = "running" if code is None else f"exited with status {code}"
        return f"host server {state}. " + super().post_mortem()

    def stop(self) -> None:
        process = self._process
        self.transport.close()
        if process is None:
            return
        self._process = None
        assert process.stdin is not None
        with contextlib.suppress(OSError):
            process.stdin.close()  # end of input: the server exits 0
        try:
            code = process.wait(timeout=_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
            self._close_pipes(process)
            raise TargetError(
                f"host server pid {process.pid} did not exit within {_STOP_GRACE_S}s of end "
                f"of input and was killed. {super().post_mortem()}"
            ) from None
        # Let the console pump reach end of file so a sanitizer report is captured whole.
        self._console_thread.join(timeout=_STOP_GRACE_S)
        self._close_pipes(process)
        if code != 0:
            raise TargetError(
                f"host server pid {process.pid} exited with status {code} at shutdown "
                f"(a sanitizer report or a crash). {super().post_mortem()}"
            )
