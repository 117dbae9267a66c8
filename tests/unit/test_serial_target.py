"""SerialTarget: flash failures, missing ports and tools, and the probe command lines."""

from __future__ import annotations

import os
import pty
import sys
import textwrap
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.boards import Board, load_boards
from harness.errors import FlashError, ResetCommandError, TargetError
from harness.targets.base import make_target
from harness.targets.serial import SerialTarget
from harness.transport.serial_port import SerialTransport


@pytest.fixture
def port_path() -> Iterator[str]:
    master, slave = pty.openpty()
    tty.setraw(slave)
    yield os.ttyname(slave)
    os.close(master)
    os.close(slave)


MINIMAL = "kind: serial\nserial: {port: /dev/null}\nflash: {command: ['true']}\n"


def board_with(tmp_path: Path, body: str) -> Board:
    path = tmp_path / "boards.yaml"
    path.write_text("boards:\n  b:\n" + textwrap.indent(textwrap.dedent(body), "    "))
    return load_boards(path).get("b")


def target_for(board: Board, tmp_path: Path) -> SerialTarget:
    target = make_target(board, build_root=tmp_path / "build", work_dir=tmp_path / "device")
    assert isinstance(target, SerialTarget)
    return target


def test_a_failing_flash_command_is_a_flash_error_with_its_output(
    tmp_path: Path, port_path: str
) -> None:
    script = "import sys; print('Error: no probe found (the flasher said so)'); sys.exit(3)"
    board = board_with(
        tmp_path,
        f"""
        kind: serial
        serial: {{port: {port_path}}}
        flash: {{command: ["{{python}}", -c, "{script}"], timeout: 20}}
        """,
    )
    target = target_for(board, tmp_path)
    target.build()
    started = time.monotonic()
    with pytest.raises(FlashError) as caught:
        target.start()
    # The failed start released the port (a caller does not stop() what did not start).
    SerialTransport(port_path).close()
    message = str(caught.value)
    assert "exit status 3" in message
    assert sys.executable in message
    assert "no probe found (the flasher said so)" in message
    assert time.monotonic() - started < 10  # reported at once, not as a later timeout
    assert (tmp_path / "device" / "flash.log").exists()


def test_a_flash_that_overruns_its_deadline_is_a_flash_error(
    tmp_path: Path, port_path: str
) -> None:
    board = board_with(
        tmp_path,
        f"""
        kind: serial
        serial: {{port: {port_path}}}
        flash: {{command: ["{{python}}", -c, "import time; time.sleep(30)"], timeout: 0.5}}
        """,
    )
    target = target_for(board, tmp_path)
    with pytest.raises(FlashError, match=r"did not finish within 0.5s"):
        target.start()
    target.stop()


def test_a_missing_flash_tool_says_how_to_install_it(tmp_path: Path, port_path: str) -> None:
    board = board_with(
        tmp_path,
        f"""
        kind: serial
        serial: {{port: {port_path}}}
        flash: {{command: [no-such-flasher-tool, --go]}}
        """,
    )
    target = target_for(board, tmp_path)
    with pytest.raises(FlashError, match=r"no-such-flasher-tool is not installed or not on PATH"):
        target.start()
    target.stop()


def test_a_missing_port_is_named_with_the_fix(tmp_path: Path) -> None:
    board = board_with(
        tmp_path,
        """
        kind: serial
        serial: {port: no/such/ttyUSB7}
        flash: {command: ["true"]}
        """,
    )
    target = target_for(board, tmp_path)
    with pytest.raises(TargetError, match=r"no/such/ttyUSB7 does not exist.*plugged in"):
        target.start()
    target.stop()


def test_a_failing_reset_command_is_a_reset_error(tmp_path: Path, port_path: str) -> None:
    board = board_with(
        tmp_path,
        f"""
        kind: serial
        serial: {{port: {port_path}}}
        reset_kinds: [hard]
        flash: {{command: ["true"]}}
        reset: {{hard: {{method: command, command: ["false", "{{port}}"]}}}}
        """,
    )
    target = target_for(board, tmp_path)
    target.start()
    try:
        with pytest.raises(ResetCommandError, match=rf"exit status 1: false {port_path}"):
            target.reset("hard")
    finally:
        target.stop()


@pytest.mark.parametrize(
    ("tool", "args", "expected"),
    [
        ("pyocd", ["-t", "k64f"], ["pyocd", "reset", "--method", "hw", "-t", "k64f"]),
        ("nrfjprog", ["-f", "NRF52"], ["nrfjprog", "--pinreset", "-f", "NRF52"]),
        (
            "openocd",
            ["-f", "board/st_nucleo_f7.cfg"],
            [
                "openocd",
                "-f",
                "board/st_nucleo_f7.cfg",
                "-c",
                "init",
                "-c",
                "reset run",
                "-c",
                "shutdown",
            ],
        ),
    ],
)
def test_probe_resets_do_not_flash(
    tmp_path: Path, tool: str, args: list[str], expected: list[str]
) -> None:
    board = board_with(tmp_path, MINIMAL)
    assert target_for(board, tmp_path).probe_reset_command(tool, args) == expected


def test_a_jlink_reset_uses_a_commander_script(tmp_path: Path) -> None:
    board = board_with(tmp_path, MINIMAL)
    command = target_for(board, tmp_path).probe_reset_command("jlink", ["-device", "nrf52"])
    script = Path(command[-1])
    assert command[:3] == ["JLinkExe", "-device", "nrf52"]
    assert script.read_text().splitlines() == ["r", "g", "qc"]


class RecordingPort:
    """Stands in for the pyserial object right below _pulse: records modem-line changes."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, bool, float]] = []

    def __setattr__(self, name: str, value: object) -> None:
        if name in ("dtr", "rts"):
            self.changes.append((name, bool(value), time.monotonic()))
        object.__setattr__(self, name, value)


@pytest.mark.parametrize("line", ["dtr", "rts"])
def test_a_modem_line_reset_is_a_pulse_of_the_stated_width(
    tmp_path: Path, port_path: str, line: str
) -> None:
    board = board_with(
        tmp_path,
        f"""
        kind: serial
        serial: {{port: {port_path}}}
        reset_kinds: [hard]
        flash: {{command: ["true"]}}
        reset: {{hard: {{method: {line}, pulse_ms: 50}}}}
        """,
    )
    target = target_for(board, tmp_path)
    target.start()
    try:
        assert target._rpc is not None
        real_port, recorder = target._rpc.port, RecordingPort()
        target._rpc._port = recorder  # type: ignore[assignment]
        try:
            target.reset("hard")
        finally:
            target._rpc._port = real_port
    finally:
        target.stop()
    (name1, on, t1), (name2, off, t2) = recorder.changes
    assert (name1, on, name2, off) == (line, True, line, False)
    assert 0.045 <= t2 - t1 < 0.5


def fake_west(folder: Path, exit_status: int) -> Path:
    """A ``west`` program on PATH that records its arguments: the process right below
    SerialTarget.flash, so the test sees the exact command line a real west would get."""
    folder.mkdir(parents=True, exist_ok=True)
    west = folder / "west"
    west.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > {folder}/args\n'
        'echo "FATAL ERROR: no boards found; is the board connected?"\n'
        f"exit {exit_status}\n"
    )
    west.chmod(0o755)
    return folder


@pytest.mark.parametrize("exit_status", [0, 1])
def test_west_flash_gets_the_build_the_runner_and_the_args(
    tmp_path: Path, port_path: str, monkeypatch: pytest.MonkeyPatch, exit_status: int
) -> None:
    from harness.zephyr import ZephyrArtifacts

    bin_dir = fake_west(tmp_path / "bin", exit_status)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    board = board_with(
        tmp_path,
        f"""
        kind: serial
        zephyr_board: nrf52840dk_nrf52840
        serial: {{port: {port_path}}}
        flash: {{runner: nrfjprog, args: [--snr, "683000000", --hex-file, "{{hex}}"]}}
        """,
    )
    target = target_for(board, tmp_path)
    build_dir = tmp_path / "build" / "b"
    target._artifacts = ZephyrArtifacts(
        build_dir=build_dir,
        elf=build_dir / "zephyr" / "zephyr.elf",
        log=build_dir / "build.log",
        zephyr_base=tmp_path,
        zephyr_version="2.5.0",
        toolchain="gnuarmemb",
    )
    try:
        if exit_status:
            with pytest.raises(FlashError, match=r"(?s)exit status 1: west flash.*no boards found"):
                target.start()
        else:
            target.start()
    finally:
        target.stop()
    assert (bin_dir / "args").read_text().split() == [
        "flash",
        "-d",
        str(build_dir),
        "--skip-rebuild",
        "--runner",
        "nrfjprog",
        "--snr",
        "683000000",
        "--hex-file",
        str(build_dir / "zephyr" / "zephyr.hex"),
    ]
