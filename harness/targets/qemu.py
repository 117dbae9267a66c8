"""QEMU boards: our own qemu-system-arm command line, UARTs on unix sockets, control by QMP.

Not ``ninja run``: its muxed stdio console eats 0x01 bytes, which corrupts binary frames.
QEMU starts paused (``-S``) so that every UART is connected before the guest runs a single
instruction, then ``cont`` over QMP. The console UART is drained all the time by a pump
thread (an unread UART stalls the whole of QEMU) and every other UART goes to ``null``.

Reset kinds: ``hard`` is QMP ``system_reset`` (the whole machine, RAM kept), ``power`` kills
QEMU and starts a new one (RAM lost), ``rpc`` is the device's own ``rpc.reset``.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from qemu.qmp.legacy import QEMUMonitorProtocol

from harness.errors import ConfigError, TargetError, ToolchainNotFound
from harness.targets.base import Target
from harness.transport.fd import FdTransport
from harness.zephyr import ZephyrArtifacts, build_zephyr

_QUIT_GRACE_S = 5.0
_QMP_TIMEOUT_S = 5.0


class QemuTarget(Target):
    """A Zephyr build running in qemu-system-arm."""

    _artifacts: ZephyrArtifacts | None = None
    _process: subprocess.Popen[bytes] | None = None
    _qmp: QEMUMonitorProtocol | None = None
    _console_socket: socket.socket | None = None
    _rpc_socket: socket.socket | None = None
    _sockets_dir: Path | None = None

    @property
    def qemu_binary(self) -> str:
        return str(self.board.qemu.get("binary", "qemu-system-arm"))

    def build(self) -> None:
        self._artifacts = build_zephyr(self.board, self.build_root, zephyr_base=self.zephyr_base)

    @property
    def artifacts(self) -> ZephyrArtifacts:
        if self._artifacts is None:
            raise TargetError("the QEMU target was not built: call build() first")
        return self._artifacts

    # -- command line ----------------------------------------------------------------------

    def command_line(self, sockets: Path) -> list[str]:
        """The qemu-system-arm command for this board, with every UART wired."""
        spec = self.board.qemu
        rpc_uart = int(spec.get("rpc_uart", 0))
        console_uart = spec.get("console_uart")
        uarts = int(spec.get("uarts", max(rpc_uart, console_uart or 0) + 1))
        command = [self.qemu_binary, "-machine", str(spec["machine"])]
        if spec.get("cpu"):
            command += ["-cpu", str(spec["cpu"])]
        command += [
            "-display",
            "none",
            "-monitor",
            "none",
            "-nodefaults",
            "-S",
            "-qmp",
            f"unix:{sockets / 'qmp.sock'},server=on,wait=off",
            "-kernel",
            str(self.artifacts.elf),
        ]
        for index in range(uarts):
            if index == rpc_uart:
                name = "rpc"
            elif console_uart is not None and index == int(console_uart):
                name = "console"
            else:
                command += ["-serial", "null"]
                continue
            command += [
                "-chardev",
                f"socket,id={name},path={sockets / (name + '.sock')},server=on,wait=off",
                "-serial",
                f"chardev:{name}",
            ]
        command += [str(arg) for arg in spec.get("extra_args", [])]
        return command

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        if shutil.which(self.qemu_binary) is None:
            raise ToolchainNotFound(
                f"{self.qemu_binary} is missing; install it: apt-get install "
                "--no-install-recommends qemu-system-arm"
            )
        self.boot_pending = True
        self.transport.replace(self._launch())

    def _launch(self) -> FdTransport:
        # Unix socket paths are limited to 108 bytes, so they live in a short /tmp folder.
        self._sockets_dir = Path(tempfile.mkdtemp(prefix="hq-"))
        command = self.command_line(self._sockets_dir)
        (self.work_dir / "qemu-command.txt").write_text(" ".join(command) + "\n")
        stderr_log = self.work_dir / "qemu-stderr.log"
        with stderr_log.open("ab") as sink:
            try:
                process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT
                )
            except OSError as exc:
                raise TargetError(f"cannot start {command[0]}: {exc}") from exc
        self._process = process
        deadline = time.monotonic() + self.board.timeouts.boot
        try:
            self._qmp = self._connect_qmp(deadline)
            self._rpc_socket = self._connect_uart("rpc", deadline)
            if self.board.qemu.get("console_uart") is not None:
                self._console_socket = self._connect_uart("console", deadline)
                self.console.reopen()
                threading.Thread(
                    target=self._pump_console,
                    args=(self._console_socket,),
                    name="qemu-console",
                    daemon=True,
                ).start()
            self._await_connected(deadline)
            self._qmp.cmd("cont")
        except BaseException:
            self._terminate()
            raise
        return FdTransport(
            self._rpc_socket.fileno(),
            self._rpc_socket.fileno(),
            name=f"{self.board.name} (QEMU pid {process.pid}, rpc UART)",
            owns_fds=False,
        )

    def _exited_error(self, what: str) -> TargetError:
        assert self._process is not None
        code = self._process.poll()
        log = self.work_dir / "qemu-stderr.log"
        text = log.read_text(errors="replace").strip() if log.exists() else ""
        return TargetError(
            f"QEMU exited with status {code} while {what}; its output:\n{text or '(none)'}\n"
            f"command: {(self.work_dir / 'qemu-command.txt').read_text().strip()}"
        )

    def _wait_for_path(self, path: Path, deadline: float, what: str) -> None:
        assert self._process is not None
        while not path.exists():
            if self._process.poll() is not None:
                raise self._exited_error(what)
            if time.monotonic() >= deadline:
                raise TargetError(f"QEMU did not create {path} ({what}) in time")
            time.sleep(0.005)  # no notification exists for a socket file appearing

    def _connect_qmp(self, deadline: float) -> QEMUMonitorProtocol:
        assert self._sockets_dir is not None
        path = self._sockets_dir / "qmp.sock"
        self._wait_for_listener(path, deadline, "starting (waiting for its QMP socket)")
        qmp = QEMUMonitorProtocol(str(path))
        qmp.settimeout(_QMP_TIMEOUT_S)
        try:
            qmp.connect()
        except Exception as exc:
            if self._process is not None and self._process.poll() is not None:
                raise self._exited_error("connecting to QMP") from exc
            raise TargetError(f"cannot connect to QEMU's QMP socket {path}: {exc}") from exc
        return qmp

    def _wait_for_listener(self, path: Path, deadline: float, what: str) -> None:
        """Wait until QEMU listens on ``path``: the socket file exists a moment before
        ``listen()``, and a connection in between is refused, so probe until it is not."""
        self._wait_for_path(path, deadline, what)
        while True:
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(path))
                return
            except ConnectionRefusedError:
                pass
            finally:
                probe.close()
            assert self._process is not None
            if self._process.poll() is not None:
                raise self._exited_error(what)
            if time.monotonic() >= deadline:
                raise TargetError(f"QEMU never listened on {path} ({what})")
            time.sleep(0.002)  # no notification exists for listen()

    def _connect_uart(self, name: str, deadline: float) -> socket.socket:
        assert self._sockets_dir is not None
        path = self._sockets_dir / f"{name}.sock"
        self._wait_for_path(path, deadline, f"starting (waiting for the {name} UART socket)")
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(path))
                return sock
            except ConnectionRefusedError as exc:
                sock.close()
                if time.monotonic() >= deadline:
                    raise TargetError(f"QEMU never listened on its {name} UART {path}") from exc
                time.sleep(0.002)  # bound but not yet listening: no notification exists
            except OSError as exc:
                sock.close()
                raise TargetError(f"cannot connect to QEMU's {name} UART at {path}: {exc}") from exc

    def _await_connected(self, deadline: float) -> None:
        """Wait until QEMU has accepted our UART connections: bytes the guest sends to a
        socket chardev with no client are dropped, and the wake-up packet must not be."""
        assert self._qmp is not None
        wanted = {"rpc"} | ({"console"} if self._console_socket is not None else set())
        while True:
            chardevs = self._qmp.cmd("query-chardev")
            pending = {
                entry["label"]
                for entry in chardevs
                if entry["label"] in wanted and entry["filename"].startswith("disconnected")
            }
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise TargetError(f"QEMU never accepted the connection to UART(s) {pending}")
            time.sleep(0.002)  # QEMU accepts in its main loop; QMP has no event for it

    def _pump_console(self, sock: socket.socket) -> None:
        try:
            while chunk := sock.recv(4096):
                self.console.feed(chunk)
        except OSError:
            return

    def _physical_reset(self, kind: str) -> None:
        if kind == "hard":
            if self._qmp is None:
                raise TargetError("hard reset: QEMU is not running")
            self._qmp.cmd("system_reset")
            return
        if kind == "power":
            old = self.transport.replace(None)
            self._terminate()
            if old is not None:
                old.close()
            self.transport.replace(self._launch())
            return
        raise ConfigError(f"QEMU boards cannot do a {kind!r} reset (only rpc, hard and power)")

    def post_mortem(self) -> str:
        if self._process is not None and self._process.poll() is not None:
            return f"{self._exited_error('the test ran')}\n{super().post_mortem()}"
        return super().post_mortem()

    def _terminate(self) -> int | None:
        """Stop QEMU: QMP quit, then wait, then SIGKILL; close every socket."""
        process, self._process = self._process, None
        code = None
        if process is not None:
            if self._qmp is not None and process.poll() is None:
                with contextlib.suppress(Exception):
                    self._qmp.cmd("quit")
            try:
                code = process.wait(timeout=_QUIT_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
        if self._qmp is not None:
            with contextlib.suppress(Exception):
                self._qmp.close()
            self._qmp = None
        for sock in (self._rpc_socket, self._console_socket):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        self._rpc_socket = self._console_socket = None
        if self._sockets_dir is not None:
            shutil.rmtree(self._sockets_dir, ignore_errors=True)
            self._sockets_dir = None
        return code

    def stop(self) -> None:
        self.transport.close()
        self._terminate()
        self.console.close()


__all__ = ["QemuTarget"]
