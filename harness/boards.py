"""boards.yaml: load it, validate it, look a board up.

A board is data. Everything that differs between boards (how it is built, started and
reset, and how long each step may take) lives in boards.yaml so that no code needs an
``if board == ...``. Validation happens on the YAML node tree rather than on plain dicts so
that every error can name the file, the line and the field, which is what a person editing
the file needs.
"""

from __future__ import annotations

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
}


@dataclass(frozen=True)
class Timeouts:
    """Deadlines in seconds for each step; a board that is slower states it here."""

    boot: float = 10.0
    handshake: float = 5.0
    call: float = 10.0
    reset: float = 10.0


@dataclass(frozen=True)
class Board:
    """One validated boards.yaml entry."""

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
    source: str = "boards.yaml"

    def supports_reset(self, kind: str) -> bool:
        return kind in self.reset_kinds


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
        source=where,
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
