"""A real labgrid lab on loopback: a device on a pty, its power switch, coordinator, exporter.

Every part is the real thing: ``rpc_host_server`` with its stdin/stdout on a pty master is
the board and the pty slave is its UART; a small HTTP relay (the kind labgrid's
``simplerest`` power model and ``HttpDigitalOutput`` drive) switches its power and pulses its
reset pin; ``labgrid-coordinator`` and ``labgrid-exporter`` (which shares the pty with
ser2net) run as processes on free loopback ports, each in its own folder. Readiness is
awaited from what each process says or from the coordinator itself, always with a deadline.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
import tty
from pathlib import Path

from harness.errors import HarnessError
from harness.targets.host import RESET_PIN, spawn_host_server

STARTUP_DEADLINE_S = 30.0
_STOP_GRACE_S = 5.0


class LabSetupError(HarnessError):
    """A part of the local lab did not come up in time; says which and what it printed."""


def free_port() -> int:
    """A TCP port nobody listens on now (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PtyBoard:
    """The host server as a board whose UART is a pty; power and reset pin from outside."""

    def __init__(self, server: Path, work_dir: Path) -> None:
        self._server = server
        self._work_dir = work_dir
        self._master, self._slave = os.openpty()
        # Raw on both sides so no byte of a frame is translated; the slave is kept open
        # here too, so the master never sees a hang-up when ser2net closes its end.
        tty.setraw(self._slave)
        tty.setraw(self._master)
        self.uart = os.ttyname(self._slave)
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self.boot_count_file = work_dir / "boot_count"
        self.console_log = work_dir / "board-console.log"

    @property
    def powered(self) -> bool:
        with self._lock:
            return self._process is not None and self._process.poll() is None

    def power_on(self) -> None:
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                return
            with self.console_log.open("ab") as console:
                self._process = spawn_host_server(
                    self._server,
                    "host",
                    self.boot_count_file,
                    stdin=self._master,
                    stdout=self._master,
                    stderr=console,
                )

    def power_off(self) -> None:
        with self._lock:
            process, self._process = self._process, None
            if process is not None:
                process.kill()
                process.wait(timeout=_STOP_GRACE_S)
            # No power, no RAM: the boot count starts again, as on a real board.
            self.boot_count_file.unlink(missing_ok=True)

    def press_reset(self) -> None:
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                self._process.send_signal(RESET_PIN)

    def close(self) -> None:
        self.power_off()
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class Relay:
    """An HTTP power switch and reset button for a PtyBoard, as a lab's network relay is.

    ``GET /power/1`` and ``/power/0`` switch power (labgrid's simplerest model), ``GET
    /power`` reads it; ``PUT /reset`` with body ``1`` presses the reset button, ``0`` lets go,
    ``GET /reset`` reads it (labgrid's HttpDigitalOutput).
    """

    def __init__(self, board: PtyBoard) -> None:
        self.board = board
        self.requests: list[str] = []
        self.reset_asserted = False
        relay = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                relay.requests.append(f"GET {self.path}")
                if self.path == "/power/1":
                    relay.board.power_on()
                elif self.path == "/power/0":
                    relay.board.power_off()
                elif self.path == "/reset":
                    self._reply("1" if relay.reset_asserted else "0")
                    return
                elif self.path != "/power":
                    self.send_error(404)
                    return
                self._reply("1" if relay.board.powered else "0")

            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                relay.requests.append(f"PUT {self.path} {body}")
                if self.path != "/reset" or body not in ("0", "1"):
                    self.send_error(404)
                    return
                relay.reset_asserted = body == "1"
                if relay.reset_asserted:
                    relay.board.press_reset()
                self._reply(body)

            def _reply(self, text: str) -> None:
                data = text.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return  # the request list is the record

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class LabProcess:
    """A labgrid daemon whose merged output is kept in a log and can be awaited."""

    def __init__(self, name: str, command: list[str], work_dir: Path) -> None:
        self.name = name
        self.log = work_dir / f"{name}.log"
        self._lines: queue.Queue[str] = queue.Queue()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            command,
            cwd=work_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.log.open("a") as log:
            for line in self.process.stdout:
                log.write(line)
                log.flush()
                self._lines.put(line)

    def await_line(self, pattern: str, deadline_s: float = STARTUP_DEADLINE_S) -> str:
        """The first output line matching ``pattern``; LabSetupError past the deadline."""
        deadline = time.monotonic() + deadline_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.process.poll() is not None:
                state = "exited" if self.process.poll() is not None else "still running"
                raise LabSetupError(
                    f"{self.name} did not print /{pattern}/ within {deadline_s:.0f}s "
                    f"({state}); its output: {self.log.read_text()[-2000:]}"
                )
            try:
                line = self._lines.get(timeout=min(remaining, 0.2))
            except queue.Empty:
                continue
            if re.search(pattern, line):
                return line

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._pump.join(timeout=_STOP_GRACE_S)


def labgrid_client(coordinator: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run labgrid-client against ``coordinator``; raise LabSetupError if it fails."""
    done = subprocess.run(
        ["labgrid-client", "-x", coordinator, *args],
        capture_output=True,
        text=True,
        timeout=STARTUP_DEADLINE_S,
        env=dict(os.environ, **(env or {})),
        check=False,
    )
    if done.returncode != 0:
        raise LabSetupError(f"labgrid-client {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def exporter_config(uart: str, relay_url: str) -> str:
    """The exporter YAML for the pty board: its UART, its power switch, its reset output."""
    return (
        "bench:\n"
        "  RawSerialPort:\n"
        f"    port: {uart}\n"
        "    speed: 115200\n"
        "  NetworkPowerPort:\n"
        "    model: simplerest\n"
        f"    host: '{relay_url}/power/{{value}}'\n"
        "    index: 0\n"
        "  HttpDigitalOutput:\n"
        f"    url: '{relay_url}/reset'\n"
        "    body_asserted: '1'\n"
        "    body_deasserted: '0'\n"
    )


class Lab:
    """The whole lab; ``place`` holds the board's serial port, power switch and reset."""

    def __init__(self, server: Path, work_dir: Path, *, place: str = "pty-board") -> None:
        self.place = place
        self.exporter_name = "loopback-exporter"
        self._stack = contextlib.ExitStack()
        try:
            self._start(server, work_dir)
        except BaseException:
            self._stack.close()
            raise

    def _start(self, server: Path, work_dir: Path) -> None:
        self.board = PtyBoard(server, work_dir)
        self._stack.callback(self.board.close)
        self.board.power_on()
        self.relay = Relay(self.board)
        self._stack.callback(self.relay.close)

        self.coordinator = f"127.0.0.1:{free_port()}"
        coordinator = LabProcess(
            "coordinator", ["labgrid-coordinator", "-l", self.coordinator], work_dir
        )
        self._stack.callback(coordinator.stop)
        coordinator.await_line(r"Coordinator ready")

        config = work_dir / "exporter.yaml"
        config.write_text(exporter_config(self.board.uart, self.relay.url))
        exporter = LabProcess(
            "exporter",
            [
                "labgrid-exporter",
                "-c",
                self.coordinator,
                "--hostname",
                "127.0.0.1",
                "-n",
                self.exporter_name,
                str(config),
            ],
            work_dir,
        )
        self._stack.callback(exporter.stop)
        exporter.await_line(r"Exporter ready")
        self._await_resources()
        labgrid_client(self.coordinator, "-p", self.place, "create")
        labgrid_client(self.coordinator, "-p", self.place, "add-match", f"{self.exporter_name}/*/*")

    def _await_resources(self) -> None:
        """Wait until the coordinator lists the exporter's serial port (the exporter's
        updates reach it asynchronously after ser2net started)."""
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        wanted = f"{self.exporter_name}/bench/NetworkSerialPort"
        while True:
            listing = labgrid_client(self.coordinator, "resources")
            if wanted in listing:
                return
            if time.monotonic() >= deadline:
                raise LabSetupError(
                    f"coordinator {self.coordinator} did not list {wanted} within "
                    f"{STARTUP_DEADLINE_S:.0f}s; it lists: {listing.strip() or 'nothing'}"
                )
            time.sleep(0.2)  # the coordinator has no push we could await from a CLI

    def close(self) -> None:
        self._stack.close()
