"""The QEMU target's command line, and a real QEMU that refuses to start."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.boards import Board, Timeouts, load_boards
from harness.connect import DEFAULT_BOARDS_FILE
from harness.errors import TargetError
from harness.targets.qemu import QemuTarget
from harness.zephyr import ZephyrArtifacts


def _target(board: Board, tmp_path: Path) -> QemuTarget:
    target = QemuTarget(board, build_root=tmp_path / "build", work_dir=tmp_path / "work")
    elf = tmp_path / "zephyr.elf"
    elf.write_bytes(b"\x7fELF not really")
    target._artifacts = ZephyrArtifacts(
        build_dir=tmp_path,
        elf=elf,
        log=tmp_path / "build.log",
        zephyr_base=tmp_path,
        zephyr_version="0.0.0",
        toolchain="none",
    )
    return target


def test_command_line_wires_every_uart_and_starts_paused(tmp_path: Path) -> None:
    board = load_boards(DEFAULT_BOARDS_FILE).get("qemu_cortex_m3")
    command = _target(board, tmp_path).command_line(Path("/tmp/s"))
    joined = " ".join(command)
    assert command[:3] == ["qemu-system-arm", "-machine", "lm3s6965evb"]
    assert "-S" in command, "QEMU must start paused until every UART is connected"
    assert "-icount" not in joined, "no -icount by default (see docs/boards.md)"
    assert command.count("-serial") == 3
    serials = [command[i + 1] for i, arg in enumerate(command) if arg == "-serial"]
    assert serials == ["chardev:rpc", "chardev:console", "null"]
    assert "socket,id=rpc,path=/tmp/s/rpc.sock,server=on,wait=off" in command
    assert "unix:/tmp/s/qmp.sock,server=on,wait=off" in command


@pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm missing")
def test_qemu_that_exits_at_once_shows_its_stderr(tmp_path: Path) -> None:
    board = Board(
        name="broken",
        kind="qemu",
        qemu={"machine": "no-such-machine", "rpc_uart": 0},
        timeouts=Timeouts(boot=5),
    )
    target = _target(board, tmp_path)
    with pytest.raises(TargetError) as caught:
        target.start()
    message = str(caught.value)
    assert "QEMU exited with status 1" in message
    assert "no-such-machine" in message, "QEMU's own complaint must be shown"
    assert "command: qemu-system-arm" in message
    target.stop()
