"""resolve_port and the port listing, against real pyserial ListPortInfo objects and real ptys.

ptys are not USB devices, so list_ports never reports them: the USB matching is tested with
ListPortInfo objects built here the way pyserial's own enumeration fills them in, and the
path case with the path of a real pty.
"""

from __future__ import annotations

import os
import pty
from collections.abc import Iterator

import pytest
from serial.tools.list_ports_common import ListPortInfo

from harness.errors import ConfigError, TargetError
from harness.serial_ports import (
    AmbiguousSerialPortError,
    SerialPortNotFoundError,
    by_id_links,
    list_serial_ports,
    resolve_port,
)


def _usb_port(device: str, vid: int, pid: int, serial_number: str | None) -> ListPortInfo:
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid = vid
    info.pid = pid
    info.serial_number = serial_number
    info.manufacturer = "STMicroelectronics"
    info.product = "STM32 STLink"
    info.description = "STM32 STLink - ST-Link VCP Data"
    return info


STLINK_A = _usb_port("/dev/ttyACM0", 0x0483, 0x374B, "066DFF485550755187121723")
STLINK_B = _usb_port("/dev/ttyACM1", 0x0483, 0x374B, "0670FF504955857567133821")
JLINK = _usb_port("/dev/ttyACM2", 0x1366, 0x1015, "000683123456")


@pytest.fixture
def pty_path() -> Iterator[str]:
    controller, device = pty.openpty()
    try:
        yield os.ttyname(device)
    finally:
        os.close(device)
        os.close(controller)


def test_an_existing_path_is_used_as_it_is(pty_path: str) -> None:
    assert resolve_port({"port": pty_path, "baud": 115200}) == pty_path


def test_a_missing_path_says_so_and_suggests_a_scan(pty_path: str) -> None:
    with pytest.raises(SerialPortNotFoundError) as caught:
        resolve_port({"port": pty_path + "-unplugged"})
    message = str(caught.value)
    assert f"{pty_path}-unplugged does not exist" in message
    assert "python -m harness boards scan" in message
    assert isinstance(caught.value, TargetError)


@pytest.mark.parametrize("url", ["rfc2217://lab-3:4001", "socket://10.0.0.7:5000", "loop://"])
def test_a_pyserial_url_passes_through(url: str) -> None:
    assert resolve_port({"port": url}, ports=[]) == url


def test_vid_pid_with_one_match_gives_that_port() -> None:
    spec = {"usb": {"vid": 0x1366, "pid": 0x1015}}
    assert resolve_port(spec, ports=[STLINK_A, JLINK]) == "/dev/ttyACM2"


@pytest.mark.parametrize("vid", [0x0483, "0483", "0x0483"])
def test_vid_pid_may_be_integers_or_hex_strings(vid: object) -> None:
    spec = {"usb": {"vid": vid, "pid": "374b"}}
    assert resolve_port(spec, ports=[STLINK_A, JLINK]) == "/dev/ttyACM0"


def test_no_match_lists_what_is_connected() -> None:
    with pytest.raises(SerialPortNotFoundError) as caught:
        resolve_port({"usb": {"vid": 0x0D28, "pid": 0x0204}}, ports=[STLINK_A, JLINK])
    message = str(caught.value)
    assert "no serial port matches usb 0d28:0204" in message
    assert "/dev/ttyACM0 usb 0483:374b" in message and "/dev/ttyACM2 usb 1366:1015" in message
    assert "boards scan" in message


def test_no_usb_ports_at_all_says_so() -> None:
    with pytest.raises(SerialPortNotFoundError, match="connected now: no USB serial ports"):
        resolve_port({"usb": {"vid": 0x0483, "pid": 0x374B}}, ports=[])


def test_two_identical_probes_ask_for_a_serial_number() -> None:
    with pytest.raises(AmbiguousSerialPortError) as caught:
        resolve_port({"usb": {"vid": 0x0483, "pid": 0x374B}}, ports=[STLINK_A, STLINK_B, JLINK])
    message = str(caught.value)
    assert message.startswith("2 serial ports match usb 0483:374b")
    assert "066DFF485550755187121723" in message and "0670FF504955857567133821" in message
    assert "serial.usb.serial_number" in message
    assert isinstance(caught.value, ConfigError)


def test_two_ports_of_one_probe_ask_for_the_path_of_one() -> None:
    first = _usb_port("/dev/ttyACM4", 0x0483, 0x3754, "003F00293132510F33383538")
    second = _usb_port("/dev/ttyACM5", 0x0483, 0x3754, "003F00293132510F33383538")
    spec = {"usb": {"vid": 0x0483, "pid": 0x3754, "serial_number": "003F00293132510F33383538"}}
    with pytest.raises(AmbiguousSerialPortError) as caught:
        resolve_port(spec, ports=[first, second])
    message = str(caught.value)
    assert "all of one probe" in message
    assert "serial: {port: PATH}, with PATH one of /dev/ttyACM4, /dev/ttyACM5" in message


def test_adapters_without_serial_numbers_ask_for_a_path() -> None:
    first = _usb_port("/dev/ttyUSB0", 0x1A86, 0x7523, None)
    second = _usb_port("/dev/ttyUSB1", 0x1A86, 0x7523, None)
    with pytest.raises(AmbiguousSerialPortError, match=r"no USB serial number .* by its path"):
        resolve_port({"usb": {"vid": 0x1A86, "pid": 0x7523}}, ports=[first, second])


def test_the_serial_number_picks_one_of_identical_probes() -> None:
    spec = {"usb": {"vid": 0x0483, "pid": 0x374B, "serial_number": "0670FF504955857567133821"}}
    assert resolve_port(spec, ports=[STLINK_A, STLINK_B]) == "/dev/ttyACM1"


def test_a_serial_number_that_is_not_connected_names_it() -> None:
    spec = {"usb": {"vid": 0x0483, "pid": 0x374B, "serial_number": "NOPE"}}
    with pytest.raises(SerialPortNotFoundError, match="with serial_number 'NOPE'"):
        resolve_port(spec, ports=[STLINK_A, STLINK_B])


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ({}, "needs 'port' .* or 'usb' with 'vid' and 'pid'"),
        ({"usb": {"vid": 0x0483}}, "needs 'port' .* or 'usb' with 'vid' and 'pid'"),
        ({"port": "/dev/x", "usb": {"vid": 1, "pid": 2}}, "either 'port' or 'usb', not both"),
        ({"usb": {"vid": "st", "pid": 1}}, r"serial.usb.vid 'st' is not a hexadecimal USB id"),
        ({"usb": {"vid": 0x10000, "pid": 1}}, r"outside 0x0000..0xffff"),
        ({"usb": {"vid": True, "pid": 1}}, r"serial.usb.vid must be a USB id"),
    ],
)
def test_a_malformed_entry_names_the_problem(spec: dict, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        resolve_port(spec, ports=[STLINK_A])


def test_listing_keeps_every_field_and_sorts_by_device() -> None:
    ports = list_serial_ports([JLINK, STLINK_A])
    assert [p.device for p in ports] == ["/dev/ttyACM0", "/dev/ttyACM2"]
    stlink = ports[0]
    assert (stlink.vid, stlink.pid, stlink.usb_id) == (0x0483, 0x374B, "0483:374b")
    assert stlink.serial_number == "066DFF485550755187121723"
    assert stlink.manufacturer == "STMicroelectronics" and stlink.product == "STM32 STLink"
    assert stlink.is_usb


def test_the_live_listing_runs_on_this_machine() -> None:
    # Whatever is attached (often nothing), every entry is a device with a path.
    for port in list_serial_ports():
        assert port.device.startswith("/dev/")
        assert port.is_usb == (port.vid is not None)


def test_by_id_links_map_the_real_device_to_its_stable_name(tmp_path, pty_path: str) -> None:
    link = tmp_path / "usb-SEGGER_J-Link_000683123456-if00"
    link.symlink_to(pty_path)
    assert by_id_links(tmp_path) == {os.path.realpath(pty_path): str(link)}
    assert by_id_links(tmp_path / "absent") == {}


def test_a_relative_path_is_relative_to_the_boards_file(tmp_path, pty_path: str) -> None:
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "rpc").symlink_to(pty_path)
    assert resolve_port({"port": "lab/rpc"}, base_dir=tmp_path) == str(tmp_path / "lab" / "rpc")
    with pytest.raises(SerialPortNotFoundError, match=f"{tmp_path}/lab/console does not exist"):
        resolve_port({"port": "lab/console"}, base_dir=tmp_path)
