"""A virtual board on a pty: the hardware path of the harness, tested without hardware.

``python -m harness.pty_board start --state DIR`` builds the host server and starts a small
daemon that plays a board on a desk: the server's RPC UART is a pty whose slave end is linked
as ``DIR/rpc`` (what a probe's virtual COM port is), its console UART a second pty linked as
``DIR/console``, and the daemon offers what a debug probe and a lab power switch offer:

* ``reset``: the reset pin (the server's SIGUSR1); RAM, the boot count, is kept.
* ``power``: the server is killed and a new one started on the same ptys; the boot-count
  file, its RAM, is deleted.
* ``flash``: a new image is "written" and the board boots it, as ``power`` does.
* ``stop``: everything ends, the links and the control socket are removed.

Each of them is a subcommand that talks to the daemon over ``DIR/control.sock`` and returns
only once the board has done it. ``run --state DIR -- COMMAND...`` starts a board, runs
the command, stops the board and exits with the command's status: the CI-friendly way to run
``pytest --board pty_host tests/device`` (boards.yaml points ``pty_host`` at build/pty_host).

The server talks on the pty's master side and the harness opens the slave side, like a
board's UART and a host's tty. The daemon keeps a slave descriptor of each pty open, in raw
mode, so the line exists (and takes no echo or line editing) while nobody has the port open,
as a USB-serial adapter's does. The console is relayed without blocking: a console line
nobody reads is dropped, as a real UART's is, rather than stalling the board.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import tty
from collections.abc import Sequence
from pathlib import Path

from harness.boards import Board
from harness.build import PROJECT_ROOT, build_host
from harness.errors import HarnessError
from harness.targets.host import RESET_PIN, spawn_host_server

DEFAULT_STATE = PROJECT_ROOT / "build" / "pty_host"
CONTROL_SOCKET = "control.sock"
START_DEADLINE_S = 30.0
COMMAND_DEADLINE_S = 30.0
_STOP_GRACE_S = 5.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent() -> None:
    """In a child before exec: get SIGKILL when the thread that started it ends (Linux), so
    a killed daemon or a killed ``run`` never leaves a board running behind it."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class PtyBoardError(HarnessError):
    """The virtual board is not running, is already running, or did not do what was asked."""


# --- the daemon -----------------------------------------------------------------------------


class _Line:
    """One pty: the board holds the master, the harness opens the slave through ``link``."""

    def __init__(self, link: Path) -> None:
        self.master, self._slave = pty.openpty()
        tty.setraw(self._slave)
        self.link = link
        link.unlink(missing_ok=True)
        link.symlink_to(os.ttyname(self._slave))

    def close(self) -> None:
        self.link.unlink(missing_ok=True)
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class VirtualBoard:
    """The host server on ptys, with a reset pin, a power switch and a flash."""

    def __init__(self, server: Path, state: Path, board_name: str) -> None:
        self.server = server
        self.state = state
        self.board_name = board_name
        self.rpc = _Line(state / "rpc")
        self.console = _Line(state / "console")
        os.set_blocking(self.console.master, False)
        self._process: subprocess.Popen[bytes] | None = None
        self._relay: threading.Thread | None = None
        self._console_log = (state / "console.log").open("ab")

    @property
    def boot_count_file(self) -> Path:
        return self.state / "boot_count"

    def power_on(self) -> None:
        process = spawn_host_server(
            self.server,
            self.board_name,
            self.boot_count_file,
            stdin=self.rpc.master,
            stdout=self.rpc.master,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent,
        )
        self._process = process
        self._relay = threading.Thread(target=self._relay_console, args=(process,), daemon=True)
        self._relay.start()

    def _relay_console(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        fd = process.stderr.fileno()
        try:
            while chunk := os.read(fd, 4096):
                self._console_log.write(chunk)
                self._console_log.flush()
                # A full console line is dropped, never waited for: a UART does not stall.
                with contextlib.suppress(BlockingIOError, OSError):
                    os.write(self.console.master, chunk)
        except (OSError, ValueError):
            return
        finally:
            process.stderr.close()

    def power_off(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait(timeout=_STOP_GRACE_S)
        if self._relay is not None:
            self._relay.join(timeout=_STOP_GRACE_S)

    def reset_pin(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            code = None if process is None else process.returncode
            raise PtyBoardError(f"reset: the board's server is not running (exit status {code})")
        process.send_signal(RESET_PIN)

    def power_cycle(self) -> None:
        self.power_off()
        self.boot_count_file.unlink(missing_ok=True)  # power loss forgets RAM
        self.power_on()

    def close(self) -> None:
        self.power_off()
        self.rpc.close()
        self.console.close()
        self._console_log.close()

    def handle(self, command: str) -> str:
        """Carry out one control command; the reply is ``ok`` or ``error: why``."""
        actions = {
            "status": lambda: None,
            "reset": self.reset_pin,
            "power": self.power_cycle,
            "flash": self.power_cycle,  # a new image boots from power-on, RAM cleared
        }
        action = actions.get(command)
        if action is None:
            return f"error: unknown command {command!r} (known: {', '.join(actions)}, stop)"
        try:
            action()
        except (PtyBoardError, OSError, subprocess.SubprocessError) as exc:
            return f"error: {exc}"
        return "ok"


def serve(server: Path, state: Path, board_name: str, ready_fd: int | None) -> None:
    """Run the board until a ``stop`` command or SIGTERM; write ``ready`` to ``ready_fd``."""
    state.mkdir(parents=True, exist_ok=True)
    control_path = state / CONTROL_SOCKET
    control_path.unlink(missing_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    board = VirtualBoard(server, state, board_name)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(control_path))
        listener.listen(4)
        (state / "daemon.pid").write_text(f"{os.getpid()}\n")
        board.power_on()
        if ready_fd is not None:
            os.write(ready_fd, b"ready\n")
            os.close(ready_fd)
        while True:
            connection, _ = listener.accept()
            with connection:
                connection.settimeout(COMMAND_DEADLINE_S)
                try:
                    command = connection.makefile("r").readline().strip()
                except OSError:
                    continue
                if command == "stop":
                    connection.sendall(b"ok\n")
                    return
                connection.sendall((board.handle(command) + "\n").encode())
    finally:
        listener.close()
        control_path.unlink(missing_ok=True)
        (state / "daemon.pid").unlink(missing_ok=True)
        board.close()


# --- the client side --------------------------------------------------------------------------


def send(state: Path, command: str, *, timeout: float = COMMAND_DEADLINE_S) -> None:
    """Ask the daemon in ``state`` to do ``command``; returns once it is done."""
    path = state / CONTROL_SOCKET
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(timeout)
        try:
            connection.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            raise PtyBoardError(
                f"no pty board is running in {state} (no daemon answers on {path}); start one "
                f"with: python -m harness.pty_board start --state {state}"
            ) from None
        try:
            connection.sendall(f"{command}\n".encode())
            reply = connection.makefile("r").readline().strip()
        except TimeoutError:
            raise PtyBoardError(
                f"the pty board in {state} did not finish {command!r} within {timeout:g}s"
            ) from None
    if reply != "ok":
        raise PtyBoardError(f"pty board {command}: {reply or 'no reply (the daemon died)'}")


def is_running(state: Path) -> bool:
    try:
        send(state, "status", timeout=5.0)
    except PtyBoardError:
        return False
    return True


def start(state: Path, build_root: Path, board_name: str, *, tied: bool = False) -> int:
    """Build the server, start the daemon in the background, return once it is ready.

    ``tied``: the daemon dies with the calling thread (``run`` uses it, so that a CI job
    that kills the run leaves no board behind); otherwise it outlives this process.
    """
    if is_running(state):
        raise PtyBoardError(
            f"a pty board is already running in {state}; stop it with: "
            f"python -m harness.pty_board stop --state {state}"
        )
    artifacts = build_host(Board(name="pty_board_server", kind="host"), build_root)
    state.mkdir(parents=True, exist_ok=True)
    read_end, write_end = os.pipe()
    with (state / "daemon.log").open("ab") as log:
        daemon = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness.pty_board",
                "serve",
                "--state",
                str(state),
                "--server",
                str(artifacts.server),
                "--board-name",
                board_name,
                "--ready-fd",
                str(write_end),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(write_end,),
            start_new_session=True,  # a terminal's Ctrl-C goes to `run`, which stops it
            cwd=PROJECT_ROOT,
            preexec_fn=_die_with_parent if tied else None,
        )
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], START_DEADLINE_S)
        line = os.read(read_end, 64) if ready else b""
    finally:
        os.close(read_end)
    if line.strip() != b"ready":
        if daemon.poll() is None:
            daemon.kill()
        daemon.wait(timeout=_STOP_GRACE_S)
        raise PtyBoardError(
            f"the pty board did not become ready within {START_DEADLINE_S:g}s (exit status "
            f"{daemon.returncode}); its log: {state / 'daemon.log'}"
        )
    return daemon.pid


def stop(state: Path) -> None:
    """Stop the daemon and wait until it has gone (its pid file removed)."""
    pid_file = state / "daemon.pid"
    pid = int(pid_file.read_text()) if pid_file.exists() else None
    send(state, "stop")
    deadline = time.monotonic() + _STOP_GRACE_S
    while pid is not None and _alive(pid):
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.02)  # a process that is not our child gives no exit notification


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child of ours that exited is a zombie until reaped; count it as gone.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def run(state: Path, build_root: Path, board_name: str, command: Sequence[str]) -> int:
    """Start a board, run ``command``, stop the board whatever happens; the command's status."""
    if not command:
        raise PtyBoardError("run needs a command after --, e.g. -- pytest --board pty_host")
    start(state, build_root, board_name, tied=True)
    try:
        return subprocess.run(list(command), check=False).returncode
    finally:
        stop(state)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.pty_board",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="run: python -m harness.pty_board run --state DIR -- COMMAND...",
    )
    parser.add_argument(
        "action", choices=["start", "stop", "reset", "power", "flash", "status", "run", "serve"]
    )
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE, help="the board's folder")
    parser.add_argument("--build-dir", type=Path, default=PROJECT_ROOT / "build")
    parser.add_argument("--board-name", default="pty_host", help="the name rpc.info reports")
    parser.add_argument("--server", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    command = argv[split + 1 :]  # for run: everything after --
    state = args.state.resolve()
    try:
        if args.action == "serve":
            if args.server is None:
                raise PtyBoardError("serve needs --server PATH (start passes it)")
            serve(args.server, state, args.board_name, args.ready_fd)
        elif args.action == "start":
            print(
                f"pty board running (pid {start(state, args.build_dir, args.board_name)}); "
                f"RPC port {state / 'rpc'}, console {state / 'console'}"
            )
        elif args.action == "stop":
            stop(state)
        elif args.action == "run":
            return run(state, args.build_dir, args.board_name, command)
        else:
            send(state, args.action)
    except HarnessError as exc:
        print(f"pty_board: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
