"""Zephyr builds: find the Zephyr tree and a toolchain, build the application per board.

Zephyr is found, in this order, from ``--zephyr-base``, ``ZEPHYR_BASE``, the west workspace
this project sits in, or ``~/zephyrproject/zephyr``. The toolchain is a Zephyr SDK if one is
installed, else the ``arm-none-eabi-gcc`` on PATH as ``gnuarmemb``. A missing piece raises
ZephyrNotFound or ToolchainNotFound saying exactly how to get it, since a CMake error three
screens deep is the usual alternative.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness.boards import Board
from harness.build import PROJECT_ROOT, run_logged
from harness.errors import BuildError, ConfigError, ToolchainNotFound, ZephyrNotFound

APP_DIR = PROJECT_ROOT / "zephyr_app"
HOW_TO_GET_ZEPHYR = (
    "Get a Zephyr workspace with scripts/bootstrap.sh --zephyr (west init -m "
    "https://github.com/zephyrproject-rtos/zephyr --mr v2.5.0 ~/zephyrproject && west update), "
    "or point to an existing one with --zephyr-base PATH or ZEPHYR_BASE=PATH."
)


_BUILD_TOOLS = (("cmake", "cmake"), ("ninja", "ninja-build"), ("dtc", "device-tree-compiler"))


@dataclass(frozen=True)
class ZephyrArtifacts:
    """What a Zephyr build produces, and which Zephyr and toolchain made it."""

    build_dir: Path
    elf: Path
    log: Path
    zephyr_base: Path
    zephyr_version: str
    toolchain: str


def _is_zephyr_tree(path: Path) -> bool:
    return (path / "VERSION").is_file() and (path / "cmake" / "app").is_dir()


def _west_workspace_zephyr(start: Path) -> Path | None:
    """The zephyr/ folder of a west workspace containing ``start``, if any."""
    for folder in (start, *start.parents):
        config = folder / ".west" / "config"
        if config.is_file():
            match = re.search(r"^\s*path\s*=\s*(\S+)", config.read_text(), re.MULTILINE)
            candidate = folder / (match.group(1) if match else "zephyr")
            return candidate if _is_zephyr_tree(candidate) else None
    return None


def find_zephyr_base(explicit: Path | str | None = None) -> Path:
    """Locate the Zephyr tree; raise ZephyrNotFound listing every place looked at."""
    looked: list[str] = []
    candidates: list[tuple[str, Path | None]] = [
        ("--zephyr-base", Path(explicit).expanduser() if explicit else None),
        ("ZEPHYR_BASE", Path(os.environ["ZEPHYR_BASE"]) if os.environ.get("ZEPHYR_BASE") else None),
        ("west workspace around the project", _west_workspace_zephyr(PROJECT_ROOT)),
        ("~/zephyrproject/zephyr", Path.home() / "zephyrproject" / "zephyr"),
    ]
    for source, path in candidates:
        if path is None:
            looked.append(f"{source}: not set")
            continue
        if _is_zephyr_tree(path):
            return path.resolve()
        looked.append(f"{source}: {path} is not a Zephyr tree")
        if source in ("--zephyr-base", "ZEPHYR_BASE"):
            break  # an explicit choice that is wrong must not silently fall through
    raise ZephyrNotFound("no Zephyr tree found (" + "; ".join(looked) + "). " + HOW_TO_GET_ZEPHYR)


def zephyr_version(base: Path) -> str:
    fields = dict(re.findall(r"^(\w+)\s*=\s*(\S*)", (base / "VERSION").read_text(), re.MULTILINE))
    version = f"{fields.get('VERSION_MAJOR', '?')}.{fields.get('VERSION_MINOR', '?')}"
    version += f".{fields.get('PATCHLEVEL', '?')}"
    return version + (f"-{fields['EXTRAVERSION']}" if fields.get("EXTRAVERSION") else "")


def toolchain_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """Environment variables that select a toolchain for the Zephyr build."""
    env = dict(os.environ if env is None else env)
    variant = env.get("ZEPHYR_TOOLCHAIN_VARIANT")
    if variant:
        if variant == "gnuarmemb" and not env.get("GNUARMEMB_TOOLCHAIN_PATH"):
            gcc = shutil.which("arm-none-eabi-gcc")
            if gcc is None:
                raise ToolchainNotFound(
                    "ZEPHYR_TOOLCHAIN_VARIANT=gnuarmemb but no arm-none-eabi-gcc on PATH and no "
                    "GNUARMEMB_TOOLCHAIN_PATH. Install it: apt-get install --no-install-recommends"
                    " gcc-arm-none-eabi libnewlib-arm-none-eabi"
                )
            env["GNUARMEMB_TOOLCHAIN_PATH"] = str(Path(gcc).resolve().parent.parent)
        return env
    sdk = env.get("ZEPHYR_SDK_INSTALL_DIR")
    sdk_dirs = [Path(sdk)] if sdk else sorted(Path.home().glob("zephyr-sdk-*"), reverse=True)
    sdk_dirs += sorted(Path("/opt").glob("zephyr-sdk-*"), reverse=True)
    for directory in sdk_dirs:
        if (directory / "sdk_version").is_file():
            env["ZEPHYR_TOOLCHAIN_VARIANT"] = "zephyr"
            env["ZEPHYR_SDK_INSTALL_DIR"] = str(directory)
            return env
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        raise ToolchainNotFound(
            "no toolchain for Arm boards: no Zephyr SDK (ZEPHYR_SDK_INSTALL_DIR, ~/zephyr-sdk-*) "
            "and no arm-none-eabi-gcc on PATH. Install one: apt-get install "
            "--no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi "
            "(or run scripts/bootstrap.sh)"
        )
    env["ZEPHYR_TOOLCHAIN_VARIANT"] = "gnuarmemb"
    env["GNUARMEMB_TOOLCHAIN_PATH"] = str(Path(gcc).resolve().parent.parent)
    return env


def _require(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        raise ToolchainNotFound(
            f"{tool} is missing; install it: apt-get install --no-install-recommends {package}"
        )


_built_this_process: dict[tuple[str, Path], ZephyrArtifacts] = {}


def build_zephyr(
    board: Board,
    build_root: Path,
    *,
    zephyr_base: Path | str | None = None,
    force: bool = False,
) -> ZephyrArtifacts:
    """Build zephyr_app/ for ``board`` into ``build_root/<board>``; incremental.

    The first build configures with ``west build --cmake-only`` inside a west workspace, or
    plain CMake elsewhere; every build then runs Ninja directly, so a build with nothing
    changed costs a Ninja no-op rather than a west start-up. Within one process (a test
    session starts a fresh device per test) the result is remembered.
    """
    key = (board.name, build_root.resolve())
    if not force and key in _built_this_process:
        return _built_this_process[key]
    artifacts = _build_zephyr(board, build_root, zephyr_base)
    _built_this_process[key] = artifacts
    return artifacts


def _build_zephyr(
    board: Board, build_root: Path, zephyr_base: Path | str | None
) -> ZephyrArtifacts:
    if not board.zephyr_board:
        raise ConfigError(f"board {board.name!r} has no zephyr_board ({board.source})")
    base = find_zephyr_base(zephyr_base)
    env = toolchain_environment()
    env["ZEPHYR_BASE"] = str(base)
    for tool, package in (
        ("cmake", "cmake"),
        ("ninja", "ninja-build"),
        ("dtc", "device-tree-compiler"),
    ):
        _require(tool, package)
    build_dir = build_root / board.name
    log = build_dir / "build.log"
    stamp = build_dir / ".harness-configure"
    key = f"board={board.zephyr_board} base={base} toolchain={env['ZEPHYR_TOOLCHAIN_VARIANT']}"
    if not (build_dir / "build.ninja").exists() or not stamp.exists() or stamp.read_text() != key:
        if build_dir.exists():
            shutil.rmtree(build_dir)
        build_dir.mkdir(parents=True)
        command = [
            "cmake",
            "-S",
            str(APP_DIR),
            "-B",
            str(build_dir),
            "-G",
            "Ninja",
            f"-DBOARD={board.zephyr_board}",
        ]
        if shutil.which("west") and _west_workspace_zephyr(base) is not None:
            command = [
                "west",
                "build",
                "--cmake-only",
                "-b",
                board.zephyr_board,
                "-d",
                str(build_dir),
                str(APP_DIR),
            ]
        _run(command, log, env, base, f"configuring zephyr_app for {board.name}")
        stamp.write_text(key)
    _run(["ninja", "-C", str(build_dir)], log, env, base, f"building zephyr_app for {board.name}")
    elf = build_dir / "zephyr" / "zephyr.elf"
    if not elf.exists():
        raise BuildError(f"the build finished but {elf} is missing; see {log}")
    return ZephyrArtifacts(
        build_dir=build_dir,
        elf=elf,
        log=log,
        zephyr_base=base,
        zephyr_version=zephyr_version(base),
        toolchain=env["ZEPHYR_TOOLCHAIN_VARIANT"],
    )


def _run(command: list[str], log: Path, env: dict[str, str], cwd: Path, what: str) -> None:
    run_logged(command, log, cwd=cwd, env=env, what=what)


def firmware_hash(elf: Path) -> str:
    """A short content hash of the firmware image, for reports."""
    import hashlib

    return hashlib.sha256(elf.read_bytes()).hexdigest()[:16]


def has_zephyr(explicit: Path | str | None = None) -> str | None:
    """None when a Zephyr tree and toolchain are usable, else the reason they are not."""
    try:
        find_zephyr_base(explicit)
        toolchain_environment()
    except (ZephyrNotFound, ToolchainNotFound) as exc:
        return str(exc)
    return None


# -- west modules (HALs): which ones the workspace has --------------------------------------

_WEST_LIST_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class WestModules:
    """The projects of a west workspace's manifest, and which of them are on disk.

    A hardware board needs its vendor HAL (hal_stm32, hal_nordic, ...) besides Zephyr; a
    workspace made with a narrow ``west update`` has only some of them, and without one the
    build fails deep inside CMake. Knowing which are present lets a check skip with the one
    command that fixes it.
    """

    workspace: Path
    paths: Mapping[str, Path]

    def is_present(self, name: str) -> bool:
        """True when the project is in the manifest and its folder exists with something in it
        (``west update`` creates the folder only when it clones the project)."""
        path = self.paths.get(name)
        return path is not None and path.is_dir() and any(path.iterdir())

    @property
    def present(self) -> frozenset[str]:
        return frozenset(name for name in self.paths if self.is_present(name))


def west_topdir(zephyr_base: Path) -> Path | None:
    """The west workspace (the folder holding .west/) that contains ``zephyr_base``."""
    for folder in (zephyr_base, *zephyr_base.parents):
        if (folder / ".west" / "config").is_file():
            return folder
    return None


def _projects_from_west(topdir: Path) -> dict[str, Path] | None:
    """``west list`` resolves imports and groups exactly as ``west update`` does; None when
    west is missing or cannot read the manifest."""
    west = shutil.which("west")
    if west is None:
        return None
    for extra in (["--all"], []):  # --all (inactive projects too) needs west >= 0.9
        try:
            result = subprocess.run(
                [west, "list", *extra, "-f", "{name}|{abspath}"],
                cwd=topdir,
                capture_output=True,
                text=True,
                timeout=_WEST_LIST_TIMEOUT_S,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if result.returncode == 0:
            rows = (line.split("|", 1) for line in result.stdout.splitlines() if "|" in line)
            return {name: Path(path) for name, path in rows}
    return None


def _projects_from_manifest(topdir: Path) -> dict[str, Path]:
    """The manifest's own project list, read directly (no imports): the fallback without
    west."""
    config = configparser.ConfigParser()
    config.read(topdir / ".west" / "config")
    manifest_dir = topdir / config.get("manifest", "path", fallback="zephyr")
    manifest = manifest_dir / config.get("manifest", "file", fallback="west.yml")
    try:
        data = yaml.safe_load(manifest.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ZephyrNotFound(f"cannot read the west manifest {manifest}: {exc}") from exc
    projects = (data.get("manifest") or {}).get("projects") or []
    found = {"manifest": manifest_dir}
    for project in projects:
        if isinstance(project, dict) and "name" in project:
            found[project["name"]] = topdir / project.get("path", project["name"])
    return found


def west_modules(zephyr_base: Path | str | None = None) -> WestModules:
    """The west projects of the workspace around the Zephyr tree, and where each lives.

    Raises ZephyrNotFound when there is no Zephyr tree, or when it is not in a west
    workspace (a bare ZEPHYR_BASE), since then no module can be found the west way.
    """
    base = find_zephyr_base(zephyr_base)
    topdir = west_topdir(base)
    if topdir is None:
        raise ZephyrNotFound(
            f"the Zephyr tree {base} is not inside a west workspace (no .west/ above it), so "
            "its modules cannot be found. " + HOW_TO_GET_ZEPHYR
        )
    paths = _projects_from_west(topdir)
    if paths is None:
        paths = _projects_from_manifest(topdir)
    return WestModules(workspace=topdir, paths=paths)


def missing_zephyr_modules(
    names: Iterable[str], zephyr_base: Path | str | None = None
) -> dict[str, str]:
    """For each of ``names`` the workspace lacks, why, and the command that gets it.

    Empty when all are present. No Zephyr tree at all is reported for every name, so a
    caller can skip with one reason.
    """
    names = list(names)
    try:
        modules = west_modules(zephyr_base)
    except ZephyrNotFound as exc:
        return {name: str(exc) for name in names}
    missing: dict[str, str] = {}
    for name in names:
        if name not in modules.paths:
            missing[name] = (
                f"west module {name!r} is not a project of the west manifest in "
                f"{modules.workspace} (`west list` shows the projects it has); check "
                f"zephyr_modules in boards.yaml, or use a Zephyr release that has it"
            )
        elif not modules.is_present(name):
            missing[name] = (
                f"west module {name!r} is not in the workspace ({modules.paths[name]} is "
                f"missing or empty); get it with: cd {modules.workspace} && west update {name}"
            )
    return missing


__all__ = [
    "WestModules",
    "ZephyrArtifacts",
    "build_zephyr",
    "find_zephyr_base",
    "firmware_hash",
    "has_zephyr",
    "missing_zephyr_modules",
    "toolchain_environment",
    "west_modules",
    "west_topdir",
    "zephyr_version",
]
