"""``python -m harness boards scan|list``: find a board's port, and see which boards can run here.

Adding a hardware board starts with one question (which port is my probe?) and running one
ends with another (why does this board not start on this machine?). ``scan`` answers the
first with the USB ids boards.yaml needs, ready to paste; ``list`` answers the second for
every configured board before any build or flash is attempted, naming each missing piece
and how to get it, so that a lab machine can be checked in seconds.

Exit status: 0 when the command did its job; 3 when ``scan`` found no USB serial port (a
board's probe is always one; other ports are still listed), or when
``list NAME...`` was asked about boards and at least one of them cannot run here (plain
``list`` only reports); 1 for a harness error (a broken boards.yaml, an unknown board);
2 for a wrong command line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.boards import Board, load_boards
from harness.build import PROJECT_ROOT
from harness.connect import DEFAULT_BOARDS_FILE
from harness.errors import HarnessError, ToolchainNotFound, ZephyrNotFound
from harness.serial_ports import SerialPort, list_serial_ports, resolve_port
from harness.zephyr import find_zephyr_base, missing_zephyr_modules, toolchain_environment

EXIT_OK = 0
EXIT_NOT_FOUND = 3

# The program each west flash runner (and probe reset tool) runs, and where to get it.
RUNNER_PROGRAMS: dict[str, tuple[str, str]] = {
    "openocd": ("openocd", "install it: apt-get install openocd"),
    "pyocd": ("pyocd", "install it: pip install pyocd"),
    "nrfjprog": ("nrfjprog", "install Nordic's nRF Command Line Tools"),
    "nrfutil": ("nrfutil", "install Nordic's nrfutil"),
    "jlink": ("JLinkExe", "install the SEGGER J-Link Software and Documentation Pack"),
    "stm32cubeprogrammer": ("STM32_Programmer_CLI", "install ST's STM32CubeProgrammer"),
    "linkserver": ("LinkServer", "install NXP's LinkServer"),
    "dfu-util": ("dfu-util", "install it: apt-get install dfu-util"),
}
_BUILD_TOOLS = (("cmake", "cmake"), ("ninja", "ninja-build"))
_ZEPHYR_BUILD_TOOLS = (*_BUILD_TOOLS, ("dtc", "device-tree-compiler"))


# -- can a board run here? ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Program:
    """A program a board needs: what it is used for, and how to get it if it is missing."""

    name: str
    use: str
    how: str

    def is_missing(self) -> bool:
        return shutil.which(self.name) is None and not Path(self.name).is_file()


def _missing_programs(programs: Sequence[_Program]) -> list[str]:
    """One line per missing program, naming every use (flash and reset often share one)."""
    uses: dict[str, list[str]] = {}
    how: dict[str, str] = {}
    for program in programs:
        if program.is_missing():
            uses.setdefault(program.name, [])
            how.setdefault(program.name, program.how)
            if program.use not in uses[program.name]:
                uses[program.name].append(program.use)
    return [
        f"{name} ({', '.join(name_uses)}) is not on PATH; {how[name]}"
        for name, name_uses in uses.items()
    ]


def _apt_programs(tools: Sequence[tuple[str, str]], use: str) -> list[_Program]:
    return [
        _Program(tool, use, f"install it: apt-get install {package}") for tool, package in tools
    ]


def _host_problems(board: Board) -> list[str]:
    use = "builds the host server"
    compiler = _Program(
        os.environ.get("CC", "cc"), f"C compiler, {use}", "install it: apt-get install gcc"
    )
    return _missing_programs([*_apt_programs(_BUILD_TOOLS, use), compiler])


def _zephyr_problems(board: Board, zephyr_base: Path | None) -> list[str]:
    """Zephyr tree, Arm toolchain, build tools and the board's west modules."""
    problems: list[str] = []
    try:
        find_zephyr_base(zephyr_base)
    except ZephyrNotFound as exc:
        problems.append(str(exc))
    try:
        toolchain_environment()
    except ToolchainNotFound as exc:
        problems.append(str(exc))
    problems += _missing_programs(_apt_programs(_ZEPHYR_BUILD_TOOLS, "builds Zephyr"))
    if not problems:
        # dict.fromkeys: without a west workspace every module has the same reason.
        problems += dict.fromkeys(
            missing_zephyr_modules(board.zephyr_modules, zephyr_base).values()
        )
    return problems


def _command_program(command: Sequence[object], use: str) -> list[_Program]:
    """The program of a boards.yaml command (its first word), if it can be known now."""
    first = str(command[0]).replace("{python}", sys.executable)
    first = first.replace("{project}", str(PROJECT_ROOT))
    if "{" in first:
        return []  # a placeholder known only at run time; nothing to check yet
    return [_Program(first, use, "install it or fix the command in boards.yaml")]


def _tool_program(tool: str, use: str) -> _Program:
    name, how = RUNNER_PROGRAMS.get(tool, (tool, f"install {tool}"))
    return _Program(name, use, how)


def _flash_and_reset_programs(board: Board) -> list[_Program]:
    programs: list[_Program] = []
    flash = board.flash
    if "command" in flash:
        programs += _command_program(flash["command"], "flash command")
    elif board.zephyr_board:
        programs.append(_Program("west", "west flash", "install it: pip install -e '.[zephyr]'"))
        runner = flash.get("runner")
        if runner is not None:
            programs.append(_tool_program(str(runner), f"flash runner {runner}"))
    hard = board.reset.get("hard", {})
    if hard.get("method") == "probe":
        programs.append(_tool_program(str(hard["tool"]), "hard reset by probe"))
    if hard.get("method") == "command":
        programs += _command_program(hard["command"], "hard reset command")
    power = board.reset.get("power", {})
    for key, use in (
        ("command", "power cycle command"),
        ("off_command", "power off command"),
        ("on_command", "power on command"),
    ):
        if power.get(key):
            programs += _command_program(power[key], use)
    return programs


def _port_problems(board: Board) -> list[str]:
    problems: list[str] = []
    for role, spec in (("serial", board.serial), ("console", board.console)):
        if not spec:
            continue
        try:
            resolve_port(spec, base_dir=board.base_dir)
        except HarnessError as exc:
            problems.append(f"{role} port: {exc}")
    return problems


def board_problems(board: Board, *, zephyr_base: Path | None = None) -> list[str]:
    """Why ``board`` cannot run on this machine now; empty when it can.

    Checks what a run would need before it is started (tools on PATH, Zephyr and its
    modules, the port plugged in), not whether the firmware builds or the board answers.
    """
    if board.kind == "host":
        return _host_problems(board)
    if board.kind == "qemu":
        qemu = _Program(
            str(board.qemu.get("binary", "qemu-system-arm")),
            "runs the board",
            "install it: apt-get install qemu-system-arm",
        )
        return _zephyr_problems(board, zephyr_base) + _missing_programs([qemu])
    problems = []
    if board.zephyr_board:
        problems += _zephyr_problems(board, zephyr_base)
    problems += _missing_programs(_flash_and_reset_programs(board))
    problems += _port_problems(board)
    return problems


# -- output ----------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]


def serial_snippet(port: SerialPort) -> list[str]:
    """A boards.yaml ``serial:`` entry for a USB port, indented to sit under a board."""
    usb = f"vid: {port.vid:#06x}, pid: {port.pid:#06x}"
    if port.serial_number:
        # Quoted: an all-digit serial number would otherwise be read as an integer.
        usb += f", serial_number: {json.dumps(port.serial_number)}"
    return [
        "    serial:",
        f"      usb: {{{usb}}}",
        "      baud: 115200",
        "      open: before_flash   # after_flash (and handshake_retry_interval) if the board's"
        " own USB provides the port",
    ]


_PLUG_IN_HINT = (
    "Plug the board's debug probe in (USB) and run this again; on Linux, `dmesg | tail` "
    "shows whether it enumerated."
)


def _port_rows(ports: Sequence[SerialPort]) -> list[str]:
    rows = [
        [
            port.device,
            port.usb_id or "-",
            port.serial_number or "-",
            " ".join(p for p in (port.manufacturer, port.product) if p) or port.description or "-",
            port.by_id or "-",
        ]
        for port in ports
    ]
    return _table(["device", "usb vid:pid", "serial number", "description", "by-id"], rows)


def _scan(args: argparse.Namespace) -> int:
    ports = list_serial_ports()
    if not ports:
        print(f"no serial ports found. {_PLUG_IN_HINT}")
        return EXIT_NOT_FOUND
    usb_ports = [port for port in ports if port.is_usb]
    if not usb_ports:
        # Built-in UARTs (/dev/ttyS0) are listed, but they are not where a board's probe
        # appears, so the answer to "where is my board?" is still: nowhere.
        print(f"no USB serial ports found. {_PLUG_IN_HINT}\n\nother serial ports:")
        for line in _port_rows(ports):
            print(line)
        return EXIT_NOT_FOUND
    for line in _port_rows(ports):
        print(line)
    print("\nboards.yaml entries (paste under the board's name; see docs/boards.md):")
    for port in usb_ports:
        label = " ".join(p for p in (port.manufacturer, port.product) if p) or port.device
        print(f"\n    # {port.device}: {label}")
        for line in serial_snippet(port):
            print(line)
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    boards_file = load_boards(args.boards_file or DEFAULT_BOARDS_FILE)
    names = args.names or list(boards_file.boards)
    boards = [boards_file.get(name) for name in names]
    zephyr_base = Path(args.zephyr_base) if args.zephyr_base else None
    verdicts = [(board, board_problems(board, zephyr_base=zephyr_base)) for board in boards]
    rows = [
        [board.name, board.kind, "no" if problems else "yes", board.description]
        for board, problems in verdicts
    ]
    for line in _table(["board", "kind", "runs here", "description"], rows):
        print(line)
    blocked = [(board, problems) for board, problems in verdicts if problems]
    for board, problems in blocked:
        print(f"\n{board.name} cannot run here ({board.source}):")
        for problem in problems:
            print(f"  - {problem}")
    if args.names and blocked:
        return EXIT_NOT_FOUND
    return EXIT_OK


def add_boards_command(subparsers: argparse._SubParsersAction) -> None:
    """Register ``boards scan`` and ``boards list`` on the main parser's subcommands."""
    boards = subparsers.add_parser(
        "boards", help="serial ports for boards.yaml (scan), and which boards can run here (list)"
    )
    commands = boards.add_subparsers(dest="boards_command", required=True)
    scan = commands.add_parser(
        "scan", help="list connected serial ports, with a boards.yaml snippet for USB ones"
    )
    scan.set_defaults(run=_scan)
    listing = commands.add_parser(
        "list", help="every configured board and whether it can run here, and why not"
    )
    listing.add_argument(
        "names", nargs="*", help="only these boards; exit 3 if any of them cannot run here"
    )
    listing.add_argument("--boards-file", default=None)
    listing.add_argument("--zephyr-base", default=None)
    listing.set_defaults(run=_list)


__all__ = ["add_boards_command", "board_problems", "serial_snippet"]
