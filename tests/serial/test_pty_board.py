"""The hardware path end to end, without hardware: a SerialTarget drives the virtual board.

A real daemon (``harness.pty_board``) runs the host server on ptys; the harness reaches it
through pyserial, flashes and resets it with the board's commands, and reads its console
on a second port, exactly as it would a board on a probe's virtual COM port.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import pty_board
from harness.boards import Board, load_boards
from harness.client import Client
from harness.errors import TransportError
from harness.targets.base import make_target
from harness.targets.serial import SerialTarget

BOARD = """\
boards:
  virtual:
    kind: serial
    reset_kinds: [rpc, hard, power, fatal]
    serial: {{port: {state}/rpc}}
    console: {{port: {state}/console}}
    flash: {{command: ["{{python}}", -m, harness.pty_board, flash, --state, "{state}"], timeout: 30}}
    reset:
      hard: {{method: command, command: ["{{python}}", -m, harness.pty_board, reset, --state, "{state}"]}}
      power: {{method: command, command: ["{{python}}", -m, harness.pty_board, power, --state, "{state}"]}}
    timeouts: {{boot: 5, handshake: 5, call: 10, reset: 5}}
"""


def short_state_dir() -> Path:
    """Unix socket paths are limited to 108 bytes: pytest's tmp_path can be longer."""
    return Path(tempfile.mkdtemp(prefix="ptyb-"))


@pytest.fixture
def state(build_root: Path) -> Iterator[Path]:
    folder = short_state_dir()
    pty_board.start(folder, build_root, "pty_host", tied=True)
    try:
        yield folder
    finally:
        pty_board.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def board(state: Path, tmp_path: Path) -> Board:
    path = tmp_path / "boards.yaml"
    path.write_text(BOARD.format(state=state))
    return load_boards(path).get("virtual")


@pytest.fixture
def target(board: Board, tmp_path: Path) -> Iterator[SerialTarget]:
    made = make_target(board, build_root=tmp_path / "build", work_dir=tmp_path / "device")
    assert isinstance(made, SerialTarget)
    made.build()
    made.start()
    try:
        yield made
    finally:
        made.stop()
        made.trace.close()


@pytest.fixture
def client(target: SerialTarget) -> Iterator[Client]:
    connection = Client.for_target(target)
    connection.handshake(target.board.timeouts.boot + target.board.timeouts.handshake)
    try:
        yield connection
    finally:
        connection.close()


def info(client: Client) -> dict[str, Any]:
    return json.loads(str(client.call("rpc.info")))


def test_calls_go_through_pyserial_after_a_flash(target: SerialTarget, client: Client) -> None:
    assert "serial " in target.transport.description
    assert client.call("rpc.add", 2, 3) == 5
    facts = info(client)
    assert facts["reset_cause"] == "power-on"  # the flash booted a fresh image
    assert facts["boot_count"] == 1
    assert not target.boot_pending  # the handshake awaited the boot's wake-up packet
    assert "flash" in (target.work_dir / "flash.log").read_text()


def test_the_console_arrives_on_its_own_port(target: SerialTarget, client: Client) -> None:
    assert "reset-cause power-on" in target.console.wait_for("boot: ", 5.0)


@pytest.mark.parametrize(
    ("kind", "cause", "count_after"),
    [("hard", "reset-pin", 2), ("power", "power-on", 1)],
)
def test_resets_by_command(
    target: SerialTarget, client: Client, kind: str, cause: str, count_after: int
) -> None:
    before = info(client)
    target.reset(kind)
    client.reconnect()
    after = info(client)
    assert after["boot_id"] != before["boot_id"]
    assert after["reset_cause"] == cause
    assert after["boot_count"] == count_after


def test_a_second_harness_on_the_same_board_is_refused(
    target: SerialTarget, board: Board, tmp_path: Path
) -> None:
    second = make_target(board, build_root=tmp_path / "build", work_dir=tmp_path / "second")
    try:
        with pytest.raises(TransportError, match=r"is in use by another process"):
            second.start()
    finally:
        second.stop()
        second.trace.close()


def test_commands_without_a_daemon_say_how_to_start_one() -> None:
    folder = short_state_dir()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "harness.pty_board", "reset", "--state", str(folder)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert result.returncode == 2
    assert "no pty board is running" in result.stderr
    assert f"python -m harness.pty_board start --state {folder}" in result.stderr


def test_run_returns_the_command_status_and_leaves_nothing_behind(build_root: Path) -> None:
    folder = short_state_dir()
    try:
        probe = f"import os, sys; sys.exit(7 if os.path.exists({str(folder / 'rpc')!r}) else 1)"
        status = pty_board.run(folder, build_root, "pty_host", [sys.executable, "-c", probe])
        assert status == 7  # the command ran while the board's port existed
        assert not (folder / "rpc").exists()
        assert not (folder / pty_board.CONTROL_SOCKET).exists()
        assert not pty_board.is_running(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_starting_a_second_daemon_on_one_state_is_refused(state: Path, build_root: Path) -> None:
    with pytest.raises(pty_board.PtyBoardError, match="already running"):
        pty_board.start(state, build_root, "pty_host")


def test_a_port_opened_after_flashing_handshakes_by_resending_init(
    state: Path, tmp_path: Path
) -> None:
    """``open: after_flash`` (a USB CDC ACM board): the boot's wake-up went out before the
    port was opened and was flushed with the stale input, so the client resends its Init."""
    text = BOARD.format(state=state).replace(
        "console: {port:", "handshake_retry_interval: 0.2\n    console: {port:"
    )
    text = text.replace(
        "serial: {port: " + f"{state}/rpc" + "}",
        f"serial: {{port: {state}/rpc, open: after_flash}}",
    )
    path = tmp_path / "boards.yaml"
    path.write_text(text)
    board = load_boards(path).get("virtual")
    assert board.serial_open == "after_flash"
    target = make_target(board, build_root=tmp_path / "build", work_dir=tmp_path / "device")
    target.build()
    target.start()
    try:
        client = Client.for_target(target)
        client.handshake(board.timeouts.boot + board.timeouts.handshake)
        before = info(client)
        target.reset("power")  # the port is closed and reopened around the power cycle
        client.reconnect()
        after = info(client)
        assert after["boot_id"] != before["boot_id"]
        assert after["reset_cause"] == "power-on"
        assert client.stats.init_sent >= 2
        client.close()
    finally:
        target.stop()
        target.trace.close()


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (the board's state folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry.name))
    return found


def test_a_killed_run_leaves_no_board_running(build_root: Path) -> None:
    folder = short_state_dir()
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.pty_board",
            "run",
            "--state",
            str(folder),
            "--build-dir",
            str(build_root),
            "--",
            sys.executable,
            "-c",
            "import time; time.sleep(60)",
        ],
    )
    try:
        deadline = time.monotonic() + 30
        while not pty_board.is_running(folder):
            assert runner.poll() is None and time.monotonic() < deadline, "the board never started"
            time.sleep(0.05)  # the board's readiness is the run's own business: poll it
        board_processes = processes_mentioning(str(folder))
        assert len(board_processes) >= 2  # the daemon and its server (and the runner)
        runner.kill()  # as a CI timeout would: no chance to clean up
        runner.wait(timeout=10)
        deadline = time.monotonic() + 10
        while left := [p for p in processes_mentioning(str(folder)) if p != runner.pid]:
            assert time.monotonic() < deadline, f"processes left behind: {left}"
            time.sleep(0.05)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        for pid in processes_mentioning(str(folder)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)
