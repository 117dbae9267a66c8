"""``python -m harness boards scan|list``: through main(argv) and as a real subprocess.

The readiness checks look at the real machine (PATH, the Zephyr workspace, real ptys); the
only stand-in is pyserial's port enumeration in the scan tests, because no USB probe is
attached here: it is replaced by ListPortInfo objects filled in as pyserial fills them.
"""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from serial.tools import list_ports
from serial.tools.list_ports_common import ListPortInfo

from harness.__main__ import main
from harness.boards import load_boards
from harness.boards_cli import board_problems
from harness.build import PROJECT_ROOT
from harness.serial_ports import resolve_port
from tests.unit.test_hardware_builds import fake_west_workspace


@pytest.fixture
def pty_path() -> Iterator[str]:
    controller, device = pty.openpty()
    try:
        yield os.ttyname(device)
    finally:
        os.close(device)
        os.close(controller)


def _boards_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "boards.yaml"
    path.write_text("boards:\n" + text)
    return path


def _serial_board(name: str, port: str, flash_program: str = "{python}") -> str:
    return (
        f"  {name}:\n"
        "    kind: serial\n"
        f"    serial: {{port: {port}}}\n"
        f"    flash: {{command: ['{flash_program}', -c, pass]}}\n"
    )


# -- list ------------------------------------------------------------------------------------


def test_list_shows_every_board_of_the_project(capsys) -> None:
    assert main(["boards", "list"]) == 0
    out = capsys.readouterr().out
    for name in load_boards(PROJECT_ROOT / "boards.yaml").boards:
        assert f"\n{name} " in out
    host_ready = all(shutil.which(tool) for tool in ("cmake", "ninja", os.environ.get("CC", "cc")))
    assert ("\nhost cannot run here" in out) != host_ready


def test_a_serial_board_on_a_present_port_can_run(tmp_path: Path, pty_path: str, capsys) -> None:
    boards = _boards_file(tmp_path, _serial_board("bench", pty_path))
    assert main(["boards", "list", "--boards-file", str(boards), "bench"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split()[:3] == ["bench", "serial", "yes"]
    assert "cannot run here" not in out


def test_an_absent_port_and_flash_tool_are_named_and_exit_3(tmp_path: Path, capsys) -> None:
    boards = _boards_file(
        tmp_path, _serial_board("bench", "/dev/ttyNOPE9", flash_program="flash-it-now")
    )
    assert main(["boards", "list", "--boards-file", str(boards), "bench"]) == 3
    out = capsys.readouterr().out
    assert "bench cannot run here" in out
    assert "flash-it-now (flash command) is not on PATH" in out
    assert "serial port /dev/ttyNOPE9 does not exist" in out and "boards scan" in out


def test_reset_and_power_programs_are_checked(tmp_path: Path, pty_path: str) -> None:
    text = _serial_board("bench", pty_path) + (
        "    reset_kinds: [rpc, hard, power]\n"
        "    reset:\n"
        "      hard: {method: probe, tool: jlink}\n"
        "      power: {method: command, off_command: [relay-ctl, 'off'], on_command: [relay-ctl, 'on']}\n"
    )
    board = load_boards(_boards_file(tmp_path, text)).get("bench")
    problems = board_problems(board)
    assert (
        "relay-ctl (power off command, power on command) is not on PATH; install it or fix the command in boards.yaml"
        in problems
    )
    jlink_missing = shutil.which("JLinkExe") is None
    assert any(p.startswith("JLinkExe (hard reset by probe)") for p in problems) == jlink_missing


def test_plain_list_only_reports(tmp_path: Path, capsys) -> None:
    boards = _boards_file(tmp_path, _serial_board("bench", "/dev/ttyNOPE9"))
    assert main(["boards", "list", "--boards-file", str(boards)]) == 0
    assert "bench cannot run here" in capsys.readouterr().out


def test_a_host_board_without_build_tools_says_what_to_install(tmp_path: Path, monkeypatch) -> None:
    board = load_boards(_boards_file(tmp_path, "  h: {kind: host}\n")).get("h")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    problems = board_problems(board)
    assert any(p.startswith("cmake (builds the host server) is not on PATH") for p in problems)
    assert (
        "cc (C compiler, builds the host server) is not on PATH; install it: apt-get install gcc"
        in problems
    )


def test_a_qemu_board_names_a_missing_qemu(tmp_path: Path, monkeypatch) -> None:
    text = "  q:\n    kind: qemu\n    zephyr_board: x\n    qemu: {machine: m}\n"
    board = load_boards(_boards_file(tmp_path, text)).get("q")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    problems = board_problems(board, zephyr_base=tmp_path / "no-zephyr")
    assert any("is not a Zephyr tree" in p for p in problems)
    assert (
        "qemu-system-arm (runs the board) is not on PATH; "
        "install it: apt-get install qemu-system-arm"
    ) in problems


def test_a_missing_west_module_is_named_with_its_west_update(tmp_path: Path, pty_path: str) -> None:
    if shutil.which("arm-none-eabi-gcc") is None and not list(Path.home().glob("zephyr-sdk-*")):
        pytest.skip("no Arm toolchain: the module check comes after the toolchain check")
    workspace = tmp_path / "ws"
    zephyr = fake_west_workspace(
        workspace, {"cmsis": "modules/hal/cmsis", "hal_stm32": "modules/hal/stm32"}, {"cmsis"}
    )
    text = (
        "  n:\n    kind: serial\n    zephyr_board: nucleo_f746zg\n"
        "    zephyr_modules: [hal_stm32, cmsis]\n"
        f"    serial: {{port: {pty_path}}}\n"
    )
    board = load_boards(_boards_file(tmp_path, text)).get("n")
    problems = board_problems(board, zephyr_base=zephyr)
    module_problems = [p for p in problems if "west module" in p]
    assert len(module_problems) == 1
    assert f"cd {workspace} && west update hal_stm32" in module_problems[0]


def test_a_bare_zephyr_tree_is_one_reason_not_one_per_module(tmp_path: Path, pty_path: str) -> None:
    if shutil.which("arm-none-eabi-gcc") is None and not list(Path.home().glob("zephyr-sdk-*")):
        pytest.skip("no Arm toolchain: the module check comes after the toolchain check")
    zephyr = tmp_path / "zephyr"
    (zephyr / "cmake" / "app").mkdir(parents=True)
    (zephyr / "VERSION").write_text("VERSION_MAJOR = 2\n")
    text = (
        "  n:\n    kind: serial\n    zephyr_board: nucleo_f746zg\n"
        "    zephyr_modules: [hal_stm32, cmsis]\n"
        f"    serial: {{port: {pty_path}}}\n"
    )
    board = load_boards(_boards_file(tmp_path, text)).get("n")
    problems = board_problems(board, zephyr_base=zephyr)
    assert sum("not inside a west workspace" in p for p in problems) == 1


def test_an_unknown_board_is_an_error_with_exit_1(capsys) -> None:
    assert main(["boards", "list", "no_such_board"]) == 1
    assert "unknown board 'no_such_board'" in capsys.readouterr().err


def test_a_broken_boards_file_names_file_and_line(tmp_path: Path, capsys) -> None:
    boards = _boards_file(tmp_path, "  s:\n    kind: serial\n    serial: {baud: 9600}\n")
    assert main(["boards", "list", "--boards-file", str(boards)]) == 1
    assert f"{boards}:4" in capsys.readouterr().err


# -- scan ------------------------------------------------------------------------------------


def _usb_port(device: str, vid: int, pid: int, serial_number: str) -> ListPortInfo:
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.serial_number = vid, pid, serial_number
    info.manufacturer, info.product = "SEGGER", "J-Link"
    info.description = "J-Link - CDC"
    return info


def test_scan_with_no_ports_says_so_and_exits_3(monkeypatch, capsys) -> None:
    monkeypatch.setattr(list_ports, "comports", lambda: [])
    assert main(["boards", "scan"]) == 3
    out = capsys.readouterr().out
    assert out.startswith("no serial ports found")
    assert "device" not in out  # no empty table


def test_scan_with_only_built_in_uarts_lists_them_and_exits_3(monkeypatch, capsys) -> None:
    built_in = ListPortInfo("/dev/ttyS0", skip_link_detection=True)
    monkeypatch.setattr(list_ports, "comports", lambda: [built_in])
    assert main(["boards", "scan"]) == 3
    out = capsys.readouterr().out
    assert out.startswith("no USB serial ports found")
    assert "\n/dev/ttyS0  -" in out and "serial:" not in out


def test_scan_prints_a_snippet_that_boards_yaml_accepts(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    # An all-digit serial number: the snippet must quote it or YAML reads an integer.
    probe = _usb_port("/dev/ttyACM3", 0x1366, 0x1015, "000683123456")
    monkeypatch.setattr(list_ports, "comports", lambda: [probe])
    assert main(["boards", "scan"]) == 0
    out = capsys.readouterr().out
    assert "/dev/ttyACM3  1366:1015    000683123456   SEGGER J-Link" in out
    snippet = out[out.index("    serial:") :]
    boards = _boards_file(
        tmp_path, "  dk:\n    kind: serial\n    zephyr_board: nrf52840dk_nrf52840\n" + snippet
    )
    board = load_boards(boards).get("dk")
    assert board.serial["usb"]["serial_number"] == "000683123456"
    assert resolve_port(board.serial, ports=[probe]) == "/dev/ttyACM3"
    assert yaml.safe_load(boards.read_text())["boards"]["dk"]["serial"]["open"] == "before_flash"


def test_scan_and_list_as_a_subprocess() -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    scan = subprocess.run(
        [sys.executable, "-m", "harness", "boards", "scan"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    connected = list_ports.comports()
    if any(port.vid is not None for port in connected):
        assert scan.returncode == 0, scan.stderr
        assert "boards.yaml entries" in scan.stdout
    elif connected:  # only built-in UARTs, such as /dev/ttyS0: listed, but no board there
        assert scan.returncode == 3
        assert scan.stdout.startswith("no USB serial ports found")
    else:
        assert scan.returncode == 3
        assert scan.stdout.startswith("no serial ports found")
    for port in connected:
        assert port.device in scan.stdout
    listing = subprocess.run(
        [sys.executable, "-m", "harness", "boards", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.startswith("board ")
    assert "\nhost " in listing.stdout
    wrong = subprocess.run(
        [sys.executable, "-m", "harness", "boards", "frobnicate"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert wrong.returncode == 2
