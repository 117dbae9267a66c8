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
