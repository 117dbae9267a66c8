"""boards.yaml: load it, validate it, look a board up.

A board is data. Everything that differs between boards (how it is built, started and
reset, and how long each step may take) lives in boards.yaml so that no code needs an
``if board == ...``. Validation happens on the YAML node tree rather than on plain dicts so
that every error can name the file, the line and the field, which is what a person editing
the file needs.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError, UnknownBoardError

KINDS = ("host", "qemu", "serial")
RESET_KINDS = ("rpc", "hard", "power", "fatal")

# field -> (python type(s), required); nested mappings are described by nested dicts.
_TIMEOUT_FIELDS = ("boot", "handshake", "call", "reset")
# Where a serial line is: a path or pyserial URL, or a USB device found by its ids.
_PORT_FIELDS: dict[str, Any] = {
    "port": (str, False),
    "usb": (
        {"vid": ((int, str), True), "pid": ((int, str), True), "serial_number": (str, False)},
        False,
    ),
    "baud": (int, False),
}
SERIAL_OPEN_MOMENTS = ("before_flash", "after_flash")
HARD_RESET_METHODS = ("probe", "dtr", "rts", "command")
PROBE_TOOLS = ("pyocd", "nrfjprog", "openocd", "jlink")
POWER_RESET_METHODS = ("command",)
# Placeholders a flash or reset command may use; see harness.targets.serial.
COMMAND_PLACEHOLDERS = ("python", "project", "build_dir", "elf", "hex", "bin", "port", "baud")
BUILD_PLACEHOLDERS = ("build_dir", "elf", "hex", "bin")
_SCHEMA: dict[str, Any] = {
    "kind": (str, True),
    "description": (str, False),
    "zephyr_board": (str, False),
    "max_packet": (int, False),
    "reset_kinds": (list, False),
    "handshake_retry_interval": ((int, float), False),
    "timeouts": ({name: ((int, float), False) for name in _TIMEOUT_FIELDS}, False),
    "build": (
        {
            "sanitize": (bool, False),
            "cmake_args": (list, False),
        },
        False,
    ),
    "qemu": (
        {
            "machine": (str, True),
            "cpu": (str, False),
            "extra_args": (list, False),
            "rpc_uart": (int, False),
            "console_uart": (int, False),
            "uarts": (int, False),
        },
        False,
    ),
    "serial": (
        {
            **_PORT_FIELDS,
            "open": (str, False),
            "exclusive": (bool, False),
        },
        False,
    ),
    "console": (dict(_PORT_FIELDS), False),
    "flash": (
        {
            "runner": (str, False),
            "args": (list, False),
            "command": (list, False),
            "timeout": ((int, float), False),
        },
        False,
    ),
    "reset": (
        {
            "hard": (
                {
                    "method": (str, True),
                    "tool": (str, False),
                    "args": (list, False),
                    "command": (list, False),
                    "pulse_ms": ((int, float), False),
                },
                False,
            ),
            "power": (
                {
                    "method": (str, True),
                    "command": (list, False),
                    "off_command": (list, False),
                    "on_command": (list, False),
                    "off_ms": ((int, float), False),
                },
                False,
            ),
        },
        False,
    ),
    "zephyr_modules": (list, False),
}


@dataclass(frozen=True)
class Timeouts:
    """Deadlines in seconds for each step; a board that is slower states it here."""

    boot: float = 10.0
    handshake: float = 5.0
    call: float = 10.0
    reset: float = 10.0


@dataclass(frozen=True)
class PortSpec:
    """Where a serial line is: ``port`` (a path or a pyserial URL such as ``rfc2217://`` or
    ``socket://``), or a USB device by vendor id, product id and, optionally, serial number
    (found at run time, because a USB port's path changes with every plug-in)."""

    port: str | None = None
    usb_vid: int | None = None
    usb_pid: int | None = None
    usb_serial_number: str | None = None
    baud: int = 115200

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> PortSpec:
        usb = raw.get("usb")
        return cls(
            port=raw.get("port"),
            usb_vid=_usb_id(usb["vid"]) if usb else None,
            usb_pid=_usb_id(usb["pid"]) if usb else None,
            usb_serial_number=usb.get("serial_number") if usb else None,
            baud=int(raw.get("baud", 115200)),
        )

    def describe(self) -> str:
        if self.port is not None:
            return self.port
        text = f"USB {self.usb_vid:04x}:{self.usb_pid:04x}"
        return text + (f" serial number {self.usb_serial_number}" if self.usb_serial_number else "")


def _usb_id(value: int | str) -> int:
    """A USB id as YAML gives it: 0x0483 (an int) or "0483" (hex, as lsusb prints it)."""
    return value if isinstance(value, int) else int(value, 16)


@dataclass(frozen=True)
class Board:
    """One validated boards.yaml entry.

    Boards of kind ``serial`` (real hardware, or anything behind a serial port) also have:

    * ``serial``: the RPC line (:class:`PortSpec` fields, plus ``open``: ``before_flash``,
      the default, for a port that lives on a debug probe and survives the board's resets,
      or ``after_flash`` for a USB CDC ACM port the board itself provides, which disappears
      and re-enumerates when the board resets (such a board needs
      ``handshake_retry_interval``: its wake-up packet is sent before the port exists); and
      ``exclusive``, default true).
    * ``console`` (optional): a second line carrying the console UART. Without it the
      harness sees no console, and tests that wait for console lines cannot run.
    * ``flash`` (optional): ``runner`` and ``args`` for ``west flash``, or ``command``, any
      flasher as a list with placeholders; ``timeout`` in seconds (default 120).
    * ``reset``: how each physical reset kind in ``reset_kinds`` is done: ``hard`` by
      ``probe`` (``tool``: pyocd, nrfjprog, openocd, jlink; ``args``), ``dtr`` or ``rts``
      (a ``pulse_ms`` pulse on that modem line) or ``command``; ``power`` by ``command``,
      or by ``off_command`` and ``on_command`` with ``off_ms`` between them.
    * ``zephyr_modules``: the west modules (HALs) a build for this board needs.

    ``zephyr_board`` is required unless ``flash.command`` is given: such a board flashes
    what its command flashes (a prebuilt image, a virtual board) and the harness builds
    nothing for it, so its commands cannot use the build placeholders.
    """

    name: str
    kind: str
    description: str = ""
    zephyr_board: str | None = None
    max_packet: int = 2048
    reset_kinds: tuple[str, ...] = ("rpc",)
    handshake_retry_interval: float | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    build: Mapping[str, Any] = field(default_factory=dict)
    qemu: Mapping[str, Any] = field(default_factory=dict)
    serial: Mapping[str, Any] = field(default_factory=dict)
    console: Mapping[str, Any] = field(default_factory=dict)
    flash: Mapping[str, Any] = field(default_factory=dict)
    reset: Mapping[str, Any] = field(default_factory=dict)
    zephyr_modules: tuple[str, ...] = ()
    source: str = "boards.yaml"
    # The folder of the boards file: relative port paths in it are relative to it.
    base_dir: Path = field(default_factory=Path)

    def supports_reset(self, kind: str) -> bool:
        return kind in self.reset_kinds

    @property
    def serial_port(self) -> PortSpec:
        """The RPC line of a serial board."""
        return PortSpec.from_mapping(self.serial)

    @property
    def console_port(self) -> PortSpec | None:
        """The console line of a serial board, if it has one."""
        return PortSpec.from_mapping(self.console) if self.console else None

    @property
    def serial_open(self) -> str:
        return str(self.serial.get("open", "before_flash"))

    @property
    def serial_exclusive(self) -> bool:
        return bool(self.serial.get("exclusive", True))

    @property
    def flash_timeout(self) -> float:
        return float(self.flash.get("timeout", 120.0))


@dataclass(frozen=True)
class BoardsFile:
    """All boards of one boards.yaml, by name."""

    path: Path
    boards: Mapping[str, Board]

    def get(self, name: str) -> Board:
        try:
            return self.boards[name]
        except KeyError:
            known = ", ".join(sorted(self.boards)) or "none"
            raise UnknownBoardError(
                f"unknown board {name!r}: {self.path} defines {known}. "
                f"Pick one of those with --board, or add an entry for {name!r} to {self.path}."
            ) from None


def _where(path: Path, node: yaml.Node) -> str:
    return f"{path}:{node.start_mark.line + 1}"


def _type_name(expected: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list",
    }
    if isinstance(expected, tuple):
        return (
            "a number" if set(expected) == {int, float} else " or ".join(map(_type_name, expected))
        )
    return names.get(expected, expected.__name__)


def _check_value(path: Path, dotted: str, node: yaml.Node, value: Any, expected: Any) -> None:
    if isinstance(expected, dict):
        if not isinstance(node, yaml.MappingNode):
            raise ConfigError(f"{_where(path, node)}: field {dotted!r} must be a mapping")
        _check_mapping(path, dotted, node, value, expected)
        return
    ok = isinstance(value, expected) and not (
        isinstance(value, bool) and expected is not bool and bool not in _as_tuple(expected)
    )
    if not ok:
        raise ConfigError(
            f"{_where(path, node)}: field {dotted!r} must be {_type_name(expected)}, got {value!r}"
        )


def _as_tuple(expected: type | tuple[type, ...]) -> tuple[type, ...]:
    return expected if isinstance(expected, tuple) else (expected,)


def _check_mapping(
    path: Path, prefix: str, node: yaml.MappingNode, value: Mapping[str, Any], schema: dict
) -> None:
    seen: set[str] = set()
    for key_node, value_node in node.value:
        key = key_node.value
        dotted = f"{prefix}.{key}"
        if key not in schema:
            allowed = ", ".join(sorted(schema))
            raise ConfigError(
                f"{_where(path, key_node)}: unknown field {dotted!r} (allowed here: {allowed})"
            )
        if key not in value:
            # YAML 1.1 reads on/off/yes/no as booleans, also as keys: say so, not KeyError.
            raise ConfigError(f"{_where(path, key_node)}: field {dotted!r}: quote it")
        seen.add(key)
        expected, _required = schema[key]
        _check_value(path, dotted, value_node, value[key], expected)
    for key, (_expected, required) in schema.items():
        if required and key not in seen:
            raise ConfigError(f"{_where(path, node)}: {prefix!r} is missing field {key!r}")


def _board_from(path: Path, name: str, node: yaml.MappingNode, raw: Mapping[str, Any]) -> Board:
    _check_mapping(path, f"boards.{name}", node, raw, _SCHEMA)
    where = _where(path, node)
    kind = raw["kind"]
    if kind not in KINDS:
        raise ConfigError(f"{where}: board {name!r}: kind must be one of {KINDS}, got {kind!r}")
    if kind == "qemu" and "qemu" not in raw:
        raise ConfigError(f"{where}: board {name!r} of kind qemu needs a 'qemu' section")
    reset_kinds = tuple(raw.get("reset_kinds", ["rpc"]))
    for reset_kind in reset_kinds:
        if reset_kind not in RESET_KINDS:
            raise ConfigError(
                f"{where}: board {name!r}: reset_kinds entry {reset_kind!r} is not one of "
                f"{RESET_KINDS}"
            )
    _check_serial_fields(path, name, node, raw, reset_kinds)
    timeouts_raw = raw.get("timeouts", {})
    for key, seconds in timeouts_raw.items():
        if seconds <= 0:
            raise ConfigError(f"{where}: board {name!r}: timeouts.{key} must be > 0")
    max_packet = raw.get("max_packet", 2048)
    if not 64 <= max_packet <= 1 << 20:
        raise ConfigError(f"{where}: board {name!r}: max_packet must be in 64..1048576")
    return Board(
        name=name,
        kind=kind,
        description=raw.get("description", ""),
        zephyr_board=raw.get("zephyr_board"),
        max_packet=max_packet,
        reset_kinds=reset_kinds,
        handshake_retry_interval=raw.get("handshake_retry_interval"),
        timeouts=Timeouts(**{k: float(v) for k, v in timeouts_raw.items()}),
        build=dict(raw.get("build", {})),
        qemu=dict(raw.get("qemu", {})),
        serial=dict(raw.get("serial", {})),
        console=dict(raw.get("console", {})),
        flash=dict(raw.get("flash", {})),
        reset=dict(raw.get("reset", {})),
        zephyr_modules=tuple(raw.get("zephyr_modules", [])),
        source=where,
        base_dir=path.resolve().parent,
    )


def _child(node: yaml.Node, *keys: str) -> yaml.Node:
    """The node at ``keys`` below ``node`` (for its line), or the deepest one that exists."""
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            return node
        found = next((v for k, v in node.value if k.value == key), None)
        if found is None:
            return node
        node = found
    return node


_SERIAL_ONLY_FIELDS = ("serial", "console", "flash", "reset")


def _check_serial_fields(
    path: Path, name: str, node: yaml.MappingNode, raw: Mapping[str, Any], reset_kinds: tuple
) -> None:
    """The rules a schema of types cannot say: which fields go together, and which values."""

    def fail(keys: tuple[str, ...], message: str) -> ConfigError:
        dotted = ".".join(("boards", name, *keys))
        return ConfigError(f"{_where(path, _child(node, *keys))}: field {dotted!r}: {message}")

    if raw["kind"] != "serial":
        for key in _SERIAL_ONLY_FIELDS:
            if key in raw:
                raise fail(
                    (key,), f"only boards of kind serial have it (this one is {raw['kind']})"
                )
        return
    if "serial" not in raw:
        raise ConfigError(
            f"{_where(path, node)}: board {name!r} of kind serial needs a 'serial' section "
            "(serial: {port: /dev/ttyACM0} or serial: {usb: {vid: 0x0483, pid: 0x374b}})"
        )
    for section in ("serial", "console"):
        if section in raw:
            _check_port(raw[section], (section,), fail)
    moment = raw["serial"].get("open", "before_flash")
    if moment not in SERIAL_OPEN_MOMENTS:
        raise fail(("serial", "open"), f"must be one of {SERIAL_OPEN_MOMENTS}, got {moment!r}")
    if moment == "after_flash" and not raw.get("handshake_retry_interval"):
        raise fail(
            ("serial", "open"),
            "after_flash needs handshake_retry_interval (e.g. 0.5): the board's wake-up packet "
            "goes out before its USB port exists, so the client must resend its Init instead",
        )
    flash = raw.get("flash", {})
    if "command" in flash and ("runner" in flash or "args" in flash):
        raise fail(
            ("flash", "command"),
            "give either a flash command or a west flash runner/args, not both",
        )
    if "command" in flash and not flash["command"]:
        raise fail(("flash", "command"), "must not be empty")
    if flash.get("timeout", 1) <= 0:
        raise fail(("flash", "timeout"), "must be > 0")
    builds = "zephyr_board" in raw
    if not builds and "command" not in flash:
        raise ConfigError(
            f"{_where(path, node)}: board {name!r} of kind serial needs 'zephyr_board' (what "
            "to build and west flash), or a 'flash.command' that flashes a prebuilt image"
        )
    commands: list[tuple[tuple[str, ...], list]] = [(("flash", "command"), flash.get("command"))]
    reset = raw.get("reset", {})
    for reset_kind in ("hard", "power"):
        if reset_kind in reset_kinds and reset_kind not in reset:
            raise fail(
                ("reset_kinds",),
                f"lists {reset_kind!r} but 'reset.{reset_kind}' does not say how to do it",
            )
    hard = reset.get("hard")
    if hard is not None:
        method = hard["method"]
        if method not in HARD_RESET_METHODS:
            raise fail(("reset", "hard", "method"), f"must be one of {HARD_RESET_METHODS}")
        if method == "probe" and hard.get("tool") not in PROBE_TOOLS:
            raise fail(
                ("reset", "hard", "tool"), f"method probe needs a tool: one of {PROBE_TOOLS}"
            )
        if method == "command" and not hard.get("command"):
            raise fail(("reset", "hard"), "method command needs a non-empty 'command' list")
        if hard.get("pulse_ms", 1) <= 0:
            raise fail(("reset", "hard", "pulse_ms"), "must be > 0")
        commands.append((("reset", "hard", "command"), hard.get("command")))
    power = reset.get("power")
    if power is not None:
        if power["method"] not in POWER_RESET_METHODS:
            raise fail(("reset", "power", "method"), f"must be one of {POWER_RESET_METHODS}")
        has_pair = "off_command" in power and "on_command" in power
        if bool(power.get("command")) == has_pair:
            raise fail(
                ("reset", "power"),
                "method command needs either 'command' (one power cycle) or both "
                "'off_command' and 'on_command'",
            )
        for key in ("command", "off_command", "on_command"):
            commands.append((("reset", "power", key), power.get(key)))
    for keys, command in commands:
        if command is not None:
            _check_placeholders(command, keys, builds, fail)
    modules = raw.get("zephyr_modules", [])
    if not all(isinstance(module, str) for module in modules):
        raise fail(("zephyr_modules",), "must be a list of west module names (strings)")


def _check_port(spec: Mapping[str, Any], keys: tuple[str, ...], fail: Any) -> None:
    if ("port" in spec) == ("usb" in spec):
        raise fail(keys, "give exactly one of 'port' (a path or URL) and 'usb' (vid, pid)")
    if spec.get("baud", 1) <= 0:
        raise fail((*keys, "baud"), "must be > 0")
    usb = spec.get("usb")
    if usb is not None:
        for id_key in ("vid", "pid"):
            try:
                value = _usb_id(usb[id_key])
            except ValueError:
                value = -1
            if not 0 <= value <= 0xFFFF:
                raise fail(
                    (*keys, "usb", id_key),
                    f"must be a 16-bit USB id (0x0483 or '0483'), got {usb[id_key]!r}",
                )


def _check_placeholders(command: list, keys: tuple[str, ...], builds: bool, fail: Any) -> None:
    for part in command:
        if isinstance(part, bool) or not isinstance(part, str | int | float):
            raise fail(keys, f"every entry must be a string (quote it), got {part!r}")
        try:
            names = [field for _, field, _, _ in string.Formatter().parse(str(part)) if field]
        except ValueError as exc:
            raise fail(keys, f"bad placeholder in {part!r}: {exc}") from None
        for placeholder in names:
            if placeholder not in COMMAND_PLACEHOLDERS:
                raise fail(
                    keys,
                    f"unknown placeholder {{{placeholder}}} in {part!r} "
                    f"(known: {', '.join(COMMAND_PLACEHOLDERS)})",
                )
            if placeholder in BUILD_PLACEHOLDERS and not builds:
                raise fail(
                    keys,
                    f"{{{placeholder}}} needs a build, and this board has no zephyr_board",
                )


def load_boards(path: Path | str) -> BoardsFile:
    """Parse and validate ``path``; every problem raises ConfigError naming file, line, field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such boards file. Pass --boards-file PATH or run from the project root."
        ) from None
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(root, yaml.MappingNode) or not isinstance(data, dict):
        raise ConfigError(f"{path}:1: the file must be a mapping with a 'boards' key")
    boards_node = next((v for k, v in root.value if k.value == "boards"), None)
    if boards_node is None or not isinstance(boards_node, yaml.MappingNode):
        raise ConfigError(f"{path}:1: missing the 'boards' mapping (boards: NAME: {{kind: ...}})")
    unknown = [k for k, _ in root.value if k.value != "boards"]
    if unknown:
        raise ConfigError(f"{_where(path, unknown[0])}: unknown top-level key {unknown[0].value!r}")
    boards: dict[str, Board] = {}
    for key_node, value_node in boards_node.value:
        name = key_node.value
        if not isinstance(value_node, yaml.MappingNode):
            raise ConfigError(f"{_where(path, value_node)}: board {name!r} must be a mapping")
        boards[name] = _board_from(path, name, value_node, data["boards"][name])
    return BoardsFile(path=path, boards=boards)
