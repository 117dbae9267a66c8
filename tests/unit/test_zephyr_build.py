"""Zephyr and toolchain discovery, and the real incremental build of zephyr_app/."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from harness.boards import load_boards
from harness.connect import DEFAULT_BOARDS_FILE
from harness.errors import ToolchainNotFound, ZephyrNotFound
from harness.zephyr import (
    build_zephyr,
    find_zephyr_base,
    has_zephyr,
    toolchain_environment,
    zephyr_version,
)

NO_ZEPHYR = has_zephyr()
needs_zephyr = pytest.mark.skipif(
    NO_ZEPHYR is not None, reason=f"needs a Zephyr workspace: {NO_ZEPHYR}"
)


def test_explicit_wrong_zephyr_base_is_not_silently_replaced(tmp_path: Path) -> None:
    with pytest.raises(ZephyrNotFound, match=r"--zephyr-base: .* is not a Zephyr tree"):
        find_zephyr_base(tmp_path)


def test_missing_zephyr_says_how_to_get_one(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("ZEPHYR_BASE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ZephyrNotFound) as caught:
        find_zephyr_base()
    message = str(caught.value)
    assert "ZEPHYR_BASE: not set" in message
    assert "west init" in message and "--zephyr-base" in message


def test_missing_toolchain_says_what_to_install(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}
    saved = os.environ.copy()
    try:
        os.environ.clear()
        os.environ.update(env)
        with pytest.raises(ToolchainNotFound, match="gcc-arm-none-eabi"):
            toolchain_environment(env)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_gnuarmemb_is_found_from_the_compiler_on_path() -> None:
    if subprocess.run(["which", "arm-none-eabi-gcc"], capture_output=True).returncode:
        pytest.skip("arm-none-eabi-gcc is not installed")
    env = toolchain_environment({"PATH": os.environ["PATH"], "HOME": "/nonexistent"})
    assert env["ZEPHYR_TOOLCHAIN_VARIANT"] == "gnuarmemb"
    assert Path(env["GNUARMEMB_TOOLCHAIN_PATH"], "bin", "arm-none-eabi-gcc").exists()


@needs_zephyr
@pytest.mark.parametrize("board_name", ["qemu_cortex_m3", "mps2_an385"])
def test_build_is_real_and_incremental(board_name: str, tmp_path_factory) -> None:
    board = load_boards(DEFAULT_BOARDS_FILE).get(board_name)
    build_root = tmp_path_factory.mktemp("zbuild")
    first = build_zephyr(board, build_root, force=True)
    assert first.elf.stat().st_size > 10_000
    assert zephyr_version(first.zephyr_base).startswith(first.zephyr_version[:3])
    started = time.monotonic()
    second = build_zephyr(board, build_root, force=True)
    elapsed = time.monotonic() - started
    assert second.elf == first.elf
    assert "ninja: no work to do" in second.log.read_text().splitlines()[-1]
    print(f"{board_name}: incremental no-op build took {elapsed:.2f}s")
    # The project's own sources compile without a single warning.
    own_warnings = [
        line
        for line in first.log.read_text().splitlines()
        if "warning:" in line and "zephyr_app/" in line
    ]
    assert own_warnings == []
