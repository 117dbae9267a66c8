"""Build-only checks for the hardware boards, and the west module detection they rest on.

No board needs to be attached: each ``serial`` board with a ``zephyr_board`` is built with
the real Zephyr build into a temporary folder, and an ELF must come out. A board whose HAL
module (``zephyr_modules`` in boards.yaml) is not in the west workspace skips, naming the
module and the ``west update`` that gets it, because a missing HAL is a fact about this
machine, not a bug in the board's entry.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.boards import Board, load_boards
from harness.connect import DEFAULT_BOARDS_FILE
from harness.errors import ZephyrNotFound
from harness.zephyr import (
    build_zephyr,
    has_zephyr,
    missing_zephyr_modules,
    west_modules,
    west_topdir,
)


def _hardware_boards() -> list[Board]:
    boards = load_boards(DEFAULT_BOARDS_FILE).boards.values()
    return [board for board in boards if board.kind == "serial" and board.zephyr_board]


HARDWARE_BOARDS = _hardware_boards()


def check_board_builds(board: Board, build_root: Path) -> None:
    """Skip, naming what is missing, unless Zephyr and every module the board needs are
    present; then build it for real and require an ELF."""
    no_zephyr = has_zephyr()
    if no_zephyr is not None:
        pytest.skip(f"needs a Zephyr workspace: {no_zephyr}")
    missing = missing_zephyr_modules(board.zephyr_modules)
    if missing:
        pytest.skip(
            f"{board.name} ({board.zephyr_board}) needs west modules that are missing: "
            + "; ".join(missing.values())
        )
    artifacts = build_zephyr(board, build_root, force=True)
    assert artifacts.elf.is_file()
    assert artifacts.elf.read_bytes()[:4] == b"\x7fELF"


@pytest.mark.zephyr
@pytest.mark.slow
@pytest.mark.parametrize("board", HARDWARE_BOARDS, ids=lambda board: board.name)
def test_hardware_board_builds(board: Board, tmp_path: Path) -> None:
    check_board_builds(board, tmp_path)


@pytest.mark.zephyr
@pytest.mark.slow
def test_a_serial_board_whose_modules_are_present_is_built(tmp_path: Path) -> None:
    # The positive path of the check above, on this machine: a serial board for a Zephyr
    # board whose only module, cmsis, is in the workspace (mps2_an385, which needs no HAL).
    boards_file = tmp_path / "boards.yaml"
    boards_file.write_text(
        "boards:\n  desk:\n    kind: serial\n    zephyr_board: mps2_an385\n"
        "    zephyr_modules: [cmsis]\n    serial: {port: /dev/ttyDESK0}\n"
    )
    board = load_boards(boards_file).get("desk")
    check_board_builds(board, tmp_path / "build")
    assert (tmp_path / "build" / "desk" / "zephyr" / "zephyr.elf").is_file()


def test_the_project_lists_hardware_boards_to_check() -> None:
    if not any(
        board.kind == "serial" for board in load_boards(DEFAULT_BOARDS_FILE).boards.values()
    ):
        pytest.skip("boards.yaml has no board of kind serial yet")
    assert HARDWARE_BOARDS, "serial boards without zephyr_board cannot be build-checked"


# -- module detection ----------------------------------------------------------------------


def fake_west_workspace(root: Path, projects: dict[str, str], present: set[str]) -> Path:
    """A west workspace on disk: .west/config, a Zephyr tree with a manifest, and the
    folders of the projects named in ``present`` (with a file in each, as a clone has)."""
    zephyr = root / "zephyr"
    (zephyr / "cmake" / "app").mkdir(parents=True)
    (zephyr / "VERSION").write_text("VERSION_MAJOR = 2\nVERSION_MINOR = 5\nPATCHLEVEL = 0\n")
    rows = "".join(f"    - name: {name}\n      path: {path}\n" for name, path in projects.items())
    (zephyr / "west.yml").write_text(
        "manifest:\n  remotes:\n    - name: upstream\n      url-base: https://example.invalid\n"
        "  defaults:\n    remote: upstream\n  projects:\n" + rows + "  self:\n    path: zephyr\n"
    )
    (root / ".west").mkdir()
    (root / ".west" / "config").write_text(
        "[manifest]\npath = zephyr\nfile = west.yml\n\n[zephyr]\nbase = zephyr\n"
    )
    for name in present:
        folder = root / projects[name]
        folder.mkdir(parents=True)
        (folder / "README").write_text(name)
    return zephyr


PROJECTS = {"cmsis": "modules/hal/cmsis", "hal_stm32": "modules/hal/stm32"}


def test_a_present_module_is_found_and_a_missing_one_named_with_its_fix(tmp_path: Path) -> None:
    zephyr = fake_west_workspace(tmp_path, PROJECTS, present={"cmsis"})
    (tmp_path / "modules" / "hal" / "stm32").mkdir(parents=True)  # empty: not cloned
    assert west_topdir(zephyr) == tmp_path
    modules = west_modules(zephyr)
    assert modules.paths["hal_stm32"] == tmp_path / "modules" / "hal" / "stm32"
    assert {"cmsis"} <= modules.present and "hal_stm32" not in modules.present
    missing = missing_zephyr_modules(["cmsis", "hal_stm32", "hal_nope"], zephyr)
    assert set(missing) == {"hal_stm32", "hal_nope"}
    assert f"cd {tmp_path} && west update hal_stm32" in missing["hal_stm32"]
    assert "not a project of the west manifest" in missing["hal_nope"]


def test_detection_without_west_reads_the_manifest(tmp_path: Path, monkeypatch) -> None:
    zephyr = fake_west_workspace(tmp_path, PROJECTS, present={"hal_stm32"})
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools-here"))
    assert shutil.which("west") is None
    modules = west_modules(zephyr)
    assert modules.present == {"hal_stm32", "manifest"}
    assert missing_zephyr_modules(["hal_stm32"], zephyr) == {}


def test_a_bare_zephyr_tree_is_not_a_west_workspace(tmp_path: Path) -> None:
    zephyr = tmp_path / "zephyr"
    (zephyr / "cmake" / "app").mkdir(parents=True)
    (zephyr / "VERSION").write_text("VERSION_MAJOR = 2\n")
    with pytest.raises(ZephyrNotFound, match="not inside a west workspace"):
        west_modules(zephyr)
    assert "not inside a west workspace" in missing_zephyr_modules(["cmsis"], zephyr)["cmsis"]


@pytest.mark.skipif(shutil.which("west") is None, reason="west is not installed")
def test_west_list_and_the_manifest_agree_on_the_workspace_here(monkeypatch) -> None:
    no_zephyr = has_zephyr()
    if no_zephyr is not None:
        pytest.skip(f"needs a Zephyr workspace: {no_zephyr}")
    through_west = west_modules()
    # The real workspace: cmsis is the HAL every Arm board needs, and is present here.
    if not through_west.is_present("cmsis"):
        pytest.skip(f"cmsis is not in {through_west.workspace}: `west update cmsis` gets it")
    assert missing_zephyr_modules(["cmsis"]) == {}
    listed = subprocess.run(
        ["west", "list", "-f", "{name}"],
        cwd=through_west.workspace,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert set(listed.stdout.split()) <= set(through_west.paths)
    # Without west on PATH the manifest is read directly, and must find the same modules.
    monkeypatch.setenv("PATH", "/nonexistent")
    from_manifest = west_modules()
    assert from_manifest.present == through_west.present
    assert from_manifest.paths["cmsis"] == through_west.paths["cmsis"]
