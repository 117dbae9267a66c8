"""boards.yaml validation: every mistake names the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.boards import load_boards
from harness.connect import DEFAULT_BOARDS_FILE
from harness.errors import ConfigError, UnknownBoardError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "boards.yaml"
    path.write_text(text)
    return path


def test_the_project_boards_file_is_valid() -> None:
    boards = load_boards(DEFAULT_BOARDS_FILE)
    host = boards.get("host")
    assert host.kind == "host"
    assert "rpc" in host.reset_kinds
    assert boards.get("host_asan").build["sanitize"] is True


def test_unknown_board_lists_the_known_ones(tmp_path: Path) -> None:
    boards = load_boards(_write(tmp_path, "boards:\n  a: {kind: host}\n  b: {kind: host}\n"))
    with pytest.raises(UnknownBoardError, match=r"unknown board 'c'.*defines a, b"):
        boards.get("c")


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (
            "boards:\n  a:\n    kind: host\n    timeout: 3\n",
            r"boards.yaml:4: unknown field 'boards.a.timeout'",
        ),
        (
            "boards:\n  a:\n    description: x\n",
            r"boards.yaml:3: 'boards.a' is missing field 'kind'",
        ),
        (
            "boards:\n  a:\n    kind: host\n    max_packet: big\n",
            r"boards.yaml:4: field 'boards.a.max_packet' must be an integer",
        ),
        ("boards:\n  a:\n    kind: toaster\n", r"boards.yaml:3: board 'a': kind must be one of"),
        (
            "boards:\n  a:\n    kind: host\n    reset_kinds: [rpc, kick]\n",
            r"reset_kinds entry 'kick'",
        ),
        ("boards:\n  a:\n    kind: host\n    timeouts: {boot: 0}\n", r"timeouts.boot must be > 0"),
        (
            "boards:\n  a:\n    kind: host\n    timeouts: {boot: yes}\n",
            r"'boards.a.timeouts.boot' must be a number",
        ),
        ("boards:\n  a:\n    kind: qemu\n", r"needs a 'qemu' section"),
        (
            "boards:\n  a:\n    kind: qemu\n    qemu: {cpu: x}\n",
            r"'boards.a.qemu' is missing field 'machine'",
        ),
        ("boards:\n  a: [1, 2]\n", r"boards.yaml:2: board 'a' must be a mapping"),
        ("bords:\n  a: {kind: host}\n", r"missing the 'boards' mapping"),
        ("boards:\n  a: {kind: host\n", r"not valid YAML"),
        ("- 1\n", r"must be a mapping with a 'boards' key"),
    ],
)
def test_broken_boards_file_names_line_and_field(tmp_path: Path, text: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        load_boards(_write(tmp_path, text))


def test_missing_boards_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--boards-file"):
        load_boards(tmp_path / "nope.yaml")


SERIAL = "boards:\n  s:\n    kind: serial\n    zephyr_board: nucleo_f746zg\n"


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (
            "boards:\n  s:\n    kind: serial\n    zephyr_board: x\n",
            r"boards.yaml:3: board 's' of kind serial needs a 'serial' section",
        ),
        (
            "boards:\n  s:\n    kind: serial\n    serial: {port: /dev/ttyACM0}\n",
            r"boards.yaml:3: board 's' of kind serial needs 'zephyr_board'.*flash.command",
        ),
        (
            SERIAL + "    serial: {baud: 9600}\n",
            r"boards.yaml:5: field 'boards.s.serial': give exactly one of 'port'",
        ),
        (
            SERIAL + "    serial:\n      port: /dev/ttyACM0\n      usb: {vid: 1, pid: 2}\n",
            r"boards.yaml:6: field 'boards.s.serial': give exactly one of 'port'",
        ),
        (
            SERIAL + "    serial:\n      usb: {vid: 0x0483}\n",
            r"boards.yaml:6: 'boards.s.serial.usb' is missing field 'pid'",
        ),
        (
            SERIAL + "    serial:\n      usb: {vid: 0x10000, pid: 1}\n",
            r"boards.yaml:6: field 'boards.s.serial.usb.vid': must be a 16-bit USB id",
        ),
        (
            SERIAL + "    serial:\n      port: /dev/x\n      open: sometimes\n",
            r"boards.yaml:7: field 'boards.s.serial.open': must be one of",
        ),
        (
            SERIAL + "    serial:\n      port: /dev/x\n      open: after_flash\n",
            r"boards.yaml:7: field 'boards.s.serial.open': after_flash needs handshake_retry_interval",
        ),
        (
            SERIAL + "    serial:\n      port: /dev/x\n      parity: E\n",
            r"boards.yaml:7: unknown field 'boards.s.serial.parity'",
        ),
        (
            SERIAL + "    serial: {port: /dev/x}\n    reset_kinds: [rpc, hard]\n",
            r"boards.yaml:6: field 'boards.s.reset_kinds': lists 'hard' but 'reset.hard'",
        ),
        (
            SERIAL + "    serial: {port: /dev/x}\n    reset:\n      hard: {method: kick}\n",
            r"boards.yaml:7: field 'boards.s.reset.hard.method': must be one of",
        ),
        (
            SERIAL
            + "    serial: {port: /dev/x}\n    reset:\n      hard: {method: probe, tool: stlink}\n",
            r"boards.yaml:7: field 'boards.s.reset.hard.tool': method probe needs a tool",
        ),
        (
            SERIAL
            + "    serial: {port: /dev/x}\n    reset:\n      power: {method: command, off_command: [a]}\n",
            r"field 'boards.s.reset.power': method command needs either 'command'",
        ),
        (
            SERIAL
            + "    serial: {port: /dev/x}\n    flash:\n      runner: jlink\n      command: [x]\n",
            r"boards.yaml:8: field 'boards.s.flash.command': give either a flash command or",
        ),
        (
            SERIAL + "    serial: {port: /dev/x}\n    flash:\n      command: [x, '{firmware}']\n",
            r"boards.yaml:7: field 'boards.s.flash.command': unknown placeholder \{firmware\}",
        ),
        (
            "boards:\n  s:\n    kind: serial\n    serial: {port: /dev/x}\n    flash:\n      command: [x, '{hex}']\n",
            r"\{hex\} needs a build, and this board has no zephyr_board",
        ),
        (
            SERIAL + "    serial: {port: /dev/x}\n    flash: {command: [true]}\n",
            r"field 'boards.s.flash.command': every entry must be a string",
        ),
        (
            SERIAL + "    serial: {port: /dev/x}\n    flash: {timeout: 0}\n",
            r"field 'boards.s.flash.timeout': must be > 0",
        ),
        (
            SERIAL + "    serial: {port: /dev/x}\n    zephyr_modules: [hal_stm32, 3]\n",
            r"boards.yaml:6: field 'boards.s.zephyr_modules': must be a list of west module names",
        ),
        (
            "boards:\n  h:\n    kind: host\n    serial: {port: /dev/x}\n",
            r"boards.yaml:4: field 'boards.h.serial': only boards of kind serial have it",
        ),
    ],
)
def test_broken_serial_board_names_line_and_field(tmp_path: Path, text: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        load_boards(_write(tmp_path, text))


def test_hardware_boards_find_their_probe_by_usb_ids() -> None:
    boards = load_boards(DEFAULT_BOARDS_FILE)
    probes = {
        "nucleo_f746zg": (0x0483, 0x374B),
        "nrf52840dk_nrf52840": (0x1366, 0x1015),
        "frdm_k64f": (0x0D28, 0x0204),
    }
    for name, (vid, pid) in probes.items():
        board = boards.get(name)
        assert board.kind == "serial"
        assert board.zephyr_board == name
        assert (board.serial_port.usb_vid, board.serial_port.usb_pid) == (vid, pid)
        assert board.serial_open == "before_flash"
        assert board.reset["hard"]["method"] == "probe"
        assert board.zephyr_modules


def test_a_serial_board_has_defaults_and_typed_accessors(tmp_path: Path) -> None:
    text = SERIAL + "    serial: {usb: {vid: '0483', pid: 0x374b, serial_number: ABC}}\n"
    board = load_boards(_write(tmp_path, text)).get("s")
    port = board.serial_port
    assert (port.usb_vid, port.usb_pid, port.usb_serial_number, port.baud) == (
        0x0483,
        0x374B,
        "ABC",
        115200,
    )
    assert port.describe() == "USB 0483:374b serial number ABC"
    assert board.serial_open == "before_flash"
    assert board.serial_exclusive is True
    assert board.console_port is None
    assert board.flash_timeout == 120.0
    assert board.base_dir == tmp_path.resolve()
