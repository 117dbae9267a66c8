"""Serial ports on this machine: list them, and find the one a board's ``serial`` entry means.

A board's debug probe shows up as a USB serial device whose /dev/ttyACM<n> name depends on
plug order, so boards.yaml can name it by USB vid/pid (and serial number, when several
identical probes are attached) instead of by path. This module turns such an entry into the
one device path to open, and every way that can go wrong (nothing plugged in, two matching
probes, a path that is not there) into an error that says what was found and how to fix it.
Listing and matching use pyserial's ``serial.tools.list_ports``, the same enumeration pyserial
itself trusts on every OS.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serial.tools import list_ports
from serial.tools.list_ports_common import ListPortInfo

from harness.errors import ConfigError, TargetError

BY_ID_DIR = Path("/dev/serial/by-id")
SCAN_HINT = "run `python -m harness boards scan` to see the serial ports connected now"


class SerialPortNotFoundError(TargetError):
    """The port a board names is not connected (or its path does not exist) right now."""


class AmbiguousSerialPortError(ConfigError):
    """A board's usb vid/pid matches several connected ports; boards.yaml must pick one."""


@dataclass(frozen=True)
class SerialPort:
    """What a user needs to recognise a port and to write a boards.yaml entry for it."""

    device: str
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    manufacturer: str | None = None
    product: str | None = None
    description: str | None = None
    by_id: str | None = None

    @property
    def is_usb(self) -> bool:
        return self.vid is not None and self.pid is not None

    @property
    def usb_id(self) -> str:
        """``0483:374b``, the form lsusb and udev rules use; empty for a non-USB port."""
        return f"{self.vid:04x}:{self.pid:04x}" if self.is_usb else ""


def by_id_links(directory: Path = BY_ID_DIR) -> dict[str, str]:
    """Map each real device path to its stable /dev/serial/by-id link (which survives replug
    and reordering, unlike /dev/ttyACM0)."""
    links: dict[str, str] = {}
    try:
        entries = sorted(directory.iterdir())
    except OSError:
        return links  # no udev, or no USB serial device at all
    for link in entries:
        links.setdefault(os.path.realpath(link), str(link))
    return links


def describe(info: ListPortInfo, links: Mapping[str, str]) -> SerialPort:
    """One pyserial ListPortInfo as a SerialPort, with its by-id link where there is one."""
    description = info.description if info.description not in (None, "n/a") else None
    return SerialPort(
        device=info.device,
        vid=info.vid,
        pid=info.pid,
        serial_number=info.serial_number,
        manufacturer=info.manufacturer,
        product=info.product,
        description=description,
        by_id=links.get(os.path.realpath(info.device)),
    )


def list_serial_ports(infos: Iterable[ListPortInfo] | None = None) -> list[SerialPort]:
    """The serial ports connected now, sorted by device path."""
    found = list_ports.comports() if infos is None else infos
    links = by_id_links()
    return sorted((describe(info, links) for info in found), key=lambda port: port.device)


def _usb_number(value: Any, field: str) -> int:
    """A vid or pid from boards.yaml: an integer (0x0483 in YAML) or a hex string ("0483")."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        try:
            number = int(value, 16)
        except ValueError:
            raise ConfigError(
                f"serial.usb.{field} {value!r} is not a hexadecimal USB id; write it as "
                f"0x0483 or '0483' (the numbers `boards scan` prints)"
            ) from None
    else:
        raise ConfigError(f"serial.usb.{field} must be a USB id such as 0x0483, got {value!r}")
    if not 0 <= number <= 0xFFFF:
        raise ConfigError(f"serial.usb.{field} {value!r} is outside 0x0000..0xffff")
    return number


def _is_url(port: str) -> bool:
    """pyserial URLs (rfc2217://, socket://, loop://, ...) name no local file."""
    return "://" in port


def _one_line(port: SerialPort) -> str:
    parts = [port.device]
    if port.is_usb:
        parts.append(f"usb {port.usb_id}")
    if port.serial_number:
        parts.append(f"serial_number {port.serial_number!r}")
    label = " ".join(p for p in (port.manufacturer, port.product) if p) or port.description
    if label:
        parts.append(f"({label})")
    return " ".join(parts)


def resolve_port(
    spec: Mapping[str, Any],
    *,
    base_dir: Path | None = None,
    ports: Sequence[ListPortInfo] | None = None,
) -> str:
    """The device path or pyserial URL to open for a board's ``serial`` entry.

    ``spec`` holds either ``port`` (a path, which must exist now, or a pyserial URL, passed
    through untouched) or ``usb`` ({vid, pid[, serial_number]}, which must match exactly one
    connected port). A relative path is taken relative to ``base_dir`` (the boards file's
    folder, ``Board.base_dir``), so it does not depend on where pytest was started.
    ``ports`` replaces the live enumeration, for tests.
    """
    if "port" in spec and "usb" in spec:
        raise ConfigError("serial: give either 'port' or 'usb', not both")
    if "port" in spec:
        port = str(spec["port"])
        if _is_url(port):
            return port
        if base_dir is not None and not os.path.isabs(port):
            port = str(base_dir / port)
        if not os.path.exists(port):
            raise SerialPortNotFoundError(
                f"serial port {port} does not exist: is the board plugged in and powered? "
                f"{SCAN_HINT}, then fix the port in boards.yaml (a /dev/serial/by-id/... "
                f"path, or usb with vid/pid, stays right across replugging)"
            )
        return port
    usb = spec.get("usb")
    if not isinstance(usb, Mapping) or "vid" not in usb or "pid" not in usb:
        raise ConfigError(
            "serial: needs 'port' (a path or a pyserial URL) or 'usb' with 'vid' and 'pid'; "
            f"{SCAN_HINT} and paste the snippet it prints for your board"
        )
    return _match_usb(usb, list_serial_ports(ports))


def _match_usb(usb: Mapping[str, Any], connected: Sequence[SerialPort]) -> str:
    vid = _usb_number(usb["vid"], "vid")
    pid = _usb_number(usb["pid"], "pid")
    wanted_serial = usb.get("serial_number")
    wanted = f"usb {vid:04x}:{pid:04x}"
    same_model = [p for p in connected if p.vid == vid and p.pid == pid]
    if wanted_serial is not None:
        wanted += f" with serial_number {str(wanted_serial)!r}"
        matches = [p for p in same_model if p.serial_number == str(wanted_serial)]
    else:
        matches = same_model
    if len(matches) == 1:
        return matches[0].by_id or matches[0].device
    if not matches:
        seen = "; ".join(_one_line(p) for p in connected if p.is_usb) or "no USB serial ports"
        raise SerialPortNotFoundError(
            f"no serial port matches {wanted}; connected now: {seen}. Is the board plugged in "
            f"and powered? {SCAN_HINT}."
        )
    choices = "; ".join(_one_line(p) for p in matches)
    serial_numbers = {p.serial_number for p in matches}
    if len(serial_numbers) == 1 and None not in serial_numbers:
        # One probe with several virtual COM ports (ST-LINK V3, some J-Link OBs): the serial
        # number cannot choose, only the interface can, and its by-id path names it.
        paths = ", ".join(p.by_id or p.device for p in matches)
        raise AmbiguousSerialPortError(
            f"{len(matches)} serial ports match {wanted}, all of one probe: {choices}. Name "
            f"the one wired to the board's RPC UART by its path in boards.yaml, "
            f"serial: {{port: PATH}}, with PATH one of {paths}."
        )
    if None in serial_numbers:
        raise AmbiguousSerialPortError(
            f"{len(matches)} serial ports match {wanted}: {choices}. Some have no USB serial "
            f"number to tell them apart, so name the board's port by its path in boards.yaml "
            f"(serial: {{port: PATH}}; /dev/serial/by-path/ names a port by the USB socket it "
            f"is plugged into)."
        )
    raise AmbiguousSerialPortError(
        f"{len(matches)} serial ports match {wanted}: {choices}. Add serial.usb.serial_number "
        f"to the board's entry in boards.yaml to pick one (the serial numbers are listed above "
        f"and by `python -m harness boards scan`)."
    )


__all__ = [
    "AmbiguousSerialPortError",
    "SerialPort",
    "SerialPortNotFoundError",
    "by_id_links",
    "list_serial_ports",
    "resolve_port",
]
