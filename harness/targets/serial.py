"""Boards of kind ``serial``: a device behind a serial port, flashed and reset by tools.

This is the target for real hardware (a debug probe's virtual COM port, a USB-serial
adapter, a lab's network serial), and for anything that looks like it: ``pty_host`` is the
host server behind a pty (see :mod:`harness.pty_board`), driven through exactly this code.

Start-up: build (Zephyr boards), open the RPC port if the board keeps it across resets
(``serial.open: before_flash``, a debug probe's port), flash, and open it afterwards where
the board's own USB re-enumerates (``after_flash``). The boot's wake-up packet is the ready
signal (``boot_pending``): nothing here sleeps to let a board boot. A flash that fails
raises FlashError at once with the command, its exit status and its output's end, so it is
never mistaken for a device that does not answer.

Commands in boards.yaml (``flash.command``, reset and power commands) are lists, run without
a shell in the boards file's folder, with these placeholders: ``{python}`` (this Python),
``{project}`` (the project root), ``{build_dir}``, ``{elf}``, ``{hex}``, ``{bin}`` (the
Zephyr build), ``{port}`` (the resolved RPC port) and ``{baud}``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from harness.build import PROJECT_ROOT
from harness.errors import (
    ConfigError,
    FlashError,
    ResetCommandError,
    TargetError,
    TransportClosedError,
)
from harness.serial_ports import resolve_port
from harness.targets.base import Target
from harness.transport.serial_port import SerialTransport
from harness.zephyr import ZephyrArtifacts, build_zephyr

LOG_TAIL_LINES = 30
_RESET_COMMAND_TIMEOUT_S = 60.0
_DEFAULT_PULSE_MS = 100.0
_CONSOLE_READ_SLICE_S = 0.2
# How often to look for a re-enumerating USB port: the kernel gives no signal we can wait on
# without udev, so it is polled within the board's boot deadline.
_PORT_POLL_S = 0.05

# How to install each tool a board's boards.yaml entry can name.
_INSTALL_HINTS = {
    "west": "pip install west",
    "pyocd": "pip install pyocd",
    "nrfjprog": "install Nordic's nRF Command Line Tools (nrfjprog) from nordicsemi.com",
    "openocd": "apt-get install --no-install-recommends openocd (or the Zephyr SDK's openocd)",
    "JLinkExe": "install SEGGER's J-Link Software and Documentation Pack",
}


def log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no output)"
    return "\n".join(text[-lines:]) or "(no output)"


def run_tool(
    command: list[str],
    *,
    log: Path,
    cwd: Path,
    timeout: float,
    what: str,
    error: type[TargetError],
) -> None:
    """Run ``command`` with its output appended to ``log``; ``error`` on any failure, naming
    the command, how it ended and the end of its output."""
    if shutil.which(command[0]) is None and not Path(command[0]).is_file():
        hint = _INSTALL_HINTS.get(Path(command[0]).name, "install it or fix the command")
        raise error(f"{what}: {command[0]} is not installed or not on PATH; {hint}")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as sink:
        sink.write(f"\n$ {' '.join(command)}\n".encode())
        sink.flush()
        try:
            result = subprocess.run(
                command,
                cwd=cwd,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise error(
                f"{what} did not finish within {timeout:g}s: {' '.join(command)}\n"
                f"log: {log}\n--- last lines ---\n{log_tail(log)}"
            ) from None
        except OSError as exc:
            raise error(f"{what}: cannot run {' '.join(command)}: {exc}") from exc
    if result.returncode != 0:
        raise error(
            f"{what} failed with exit status {result.returncode}: {' '.join(command)}\n"
            f"log: {log}\n--- last lines ---\n{log_tail(log)}"
        )


class SerialTarget(Target):
    """A board on a serial port: flashed by ``west flash`` or a command, reset by its probe,
    a modem line or a command, power-cycled by a command."""

    _artifacts: ZephyrArtifacts | None = None
    _rpc: SerialTransport | None = None
    _console_line: SerialTransport | None = None
    _console_thread: threading.Thread | None = None
    _port: str | None = None

    # -- build ---------------------------------------------------------------------------------

    def build(self) -> None:
        """Zephyr boards are built; a board with only a flash command has nothing to build."""
        if self.board.zephyr_board:
            self._artifacts = build_zephyr(
                self.board, self.build_root, zephyr_base=self.zephyr_base
            )

    @property
    def artifacts(self) -> ZephyrArtifacts | None:
        return self._artifacts

    def placeholders(self) -> dict[str, str]:
        """The values of the placeholders commands in boards.yaml may use."""
        values = {
            "python": sys.executable,
            "project": str(PROJECT_ROOT),
            "port": self._port or "",
            "baud": str(self.board.serial_port.baud),
        }
        if self._artifacts is not None:
            zephyr = self._artifacts.build_dir / "zephyr"
            values |= {
                "build_dir": str(self._artifacts.build_dir),
                "elf": str(self._artifacts.elf),
                "hex": str(zephyr / "zephyr.hex"),
                "bin": str(zephyr / "zephyr.bin"),
            }
        return values

    def _expand(self, command: list[object]) -> list[str]:
        values = self.placeholders()
        try:
            return [str(part).format(**values) for part in command]
        except KeyError as exc:
            raise ConfigError(
                f"board {self.board.name}: placeholder {exc} has no value here (was the board "
                f"built?); see {self.board.source}"
            ) from None

    # -- start ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Open, flash, (open): a start that fails releases the ports it opened, since a
        caller whose start raised does not call stop(), and a port left locked would refuse
        the next test."""
        self.console.reopen()
        try:
            if self.board.serial_open == "before_flash":
                self._open_lines(deadline=time.monotonic())
            self.boot_pending = True
            self.flash()
            if self.board.serial_open == "after_flash":
                self._open_lines(deadline=time.monotonic() + self.board.timeouts.boot)
        except BaseException:
            self._close_lines()
            raise

    def flash(self) -> None:
        """Write the firmware with ``west flash`` or the board's flash command."""
        spec = self.board.flash
        if "command" in spec:
            command = self._expand(list(spec["command"]))
        else:
            if self._artifacts is None:
                raise TargetError(f"board {self.board.name} was not built: call build() first")
            command = ["west", "flash", "-d", str(self._artifacts.build_dir), "--skip-rebuild"]
            if spec.get("runner"):
                command += ["--runner", str(spec["runner"])]
            command += self._expand(list(spec.get("args", [])))
        self.trace.note("flash", " ".join(command))
        run_tool(
            command,
            log=self.work_dir / "flash.log",
            cwd=self.board.base_dir,
            timeout=self.board.flash_timeout,
            what=f"flashing {self.board.name}",
            error=FlashError,
        )

    def _open_lines(self, deadline: float) -> None:
        """Open the RPC port (and the console's, if the board has one) and attach them."""
        self._port = self._await_port(dict(self.board.serial), deadline)
        released = tuple(
            line
            for line in ("dtr", "rts")
            if self.board.reset.get("hard", {}).get("method") == line
        )
        self._rpc = SerialTransport(
            self._port,
            baud=self.board.serial_port.baud,
            exclusive=self.board.serial_exclusive,
            released_lines=released,
        )
        self.transport.replace(self._rpc)
        if self.board.console and self._console_line is None:
            console_port = self._await_port(dict(self.board.console), deadline)
            console_spec = self.board.console_port
            assert console_spec is not None
            self._console_line = SerialTransport(console_port, baud=console_spec.baud)
            self._console_thread = threading.Thread(
                target=self._pump_console,
                args=(self._console_line,),
                name=f"{self.board.name}-console",
                daemon=True,
            )
            self._console_thread.start()

    def _await_port(self, spec: dict[str, object], deadline: float) -> str:
        """The port's path or URL; waits until ``deadline`` for one that is re-enumerating."""
        while True:
            try:
                return resolve_port(spec, base_dir=self.board.base_dir)
            except TargetError:
                if time.monotonic() >= deadline:
                    raise
            time.sleep(_PORT_POLL_S)

    def _pump_console(self, line: SerialTransport) -> None:
        while True:
            try:
                data = line.read(_CONSOLE_READ_SLICE_S)
            except TransportClosedError:
                return  # closed by stop(), or the port went away
            self.console.feed(data)

    # -- resets --------------------------------------------------------------------------------

    def _physical_reset(self, kind: str) -> None:
        reenumerates = self.board.serial_open == "after_flash"
        if reenumerates:
            self._detach_rpc()
        if kind == "hard":
            self._hard_reset()
        elif kind == "power":
            self._power_cycle()
        else:
            raise ConfigError(f"a serial board cannot do a {kind!r} reset (hard, power)")
        if reenumerates:
            self._open_lines(deadline=time.monotonic() + self.board.timeouts.boot)

    def _detach_rpc(self) -> None:
        old = self.transport.replace(None)
        if old is not None:
            old.close()
        self._rpc = None

    def _hard_reset(self) -> None:
        spec = self.board.reset["hard"]
        method = spec["method"]
        if method in ("dtr", "rts"):
            self._pulse(method, float(spec.get("pulse_ms", _DEFAULT_PULSE_MS)))
            return
        if method == "probe":
            command = self.probe_reset_command(str(spec["tool"]), list(spec.get("args", [])))
        else:
            command = self._expand(list(spec["command"]))
        self._run_reset(command, "hard reset")

    def probe_reset_command(self, tool: str, args: list[object]) -> list[str]:
        """A command line that resets the board through its debug probe without flashing."""
        extra = self._expand(args)
        if tool == "pyocd":
            return ["pyocd", "reset", "--method", "hw", *extra]
        if tool == "nrfjprog":
            return ["nrfjprog", "--pinreset", *extra]
        if tool == "openocd":
            return ["openocd", *extra, "-c", "init", "-c", "reset run", "-c", "shutdown"]
        if tool == "jlink":
            script = self.work_dir / "jlink-reset.jlink"
            script.write_text("r\ng\nqc\n")
            return ["JLinkExe", *extra, "-autoconnect", "1", "-CommanderScript", str(script)]
        raise ConfigError(f"unknown probe tool {tool!r} for board {self.board.name}")

    def _pulse(self, line: str, pulse_ms: float) -> None:
        """Assert DTR or RTS for ``pulse_ms``: boards wire it (inverted) to their reset pin.

        The sleep is the pulse's width, which the reset circuit needs, not a wait for an event.
        """
        if self._rpc is None:
            raise TargetError(f"{line} reset of {self.board.name}: the serial port is not open")
        port = self._rpc.port
        setattr(port, line, True)
        time.sleep(pulse_ms / 1000.0)
        setattr(port, line, False)

    def _power_cycle(self) -> None:
        spec = self.board.reset["power"]
        if spec.get("command"):
            self._run_reset(self._expand(list(spec["command"])), "power cycle")
            return
        self._run_reset(self._expand(list(spec["off_command"])), "power off")
        time.sleep(float(spec.get("off_ms", 500)) / 1000.0)  # the time without power
        self._run_reset(self._expand(list(spec["on_command"])), "power on")

    def _run_reset(self, command: list[str], what: str) -> None:
        self.trace.note("reset", " ".join(command))
        run_tool(
            command,
            log=self.work_dir / "reset.log",
            cwd=self.board.base_dir,
            timeout=max(self.board.timeouts.reset, _RESET_COMMAND_TIMEOUT_S),
            what=f"{what} of {self.board.name}",
            error=ResetCommandError,
        )

    # -- stop ----------------------------------------------------------------------------------

    def post_mortem(self) -> str:
        where = f"serial port {self._port or self.board.serial_port.describe()}"
        return f"{self.board.name} on {where}. " + super().post_mortem()

    def stop(self) -> None:
        self.transport.close()
        self._close_lines()
        self.console.close()

    def _close_lines(self) -> None:
        old = self.transport.replace(None)
        if old is not None:
            old.close()
        self._rpc = None
        line, self._console_line = self._console_line, None
        if line is not None:
            line.close()
        if self._console_thread is not None:
            self._console_thread.join(timeout=2.0)
            self._console_thread = None


__all__ = ["SerialTarget", "log_tail", "run_tool"]
