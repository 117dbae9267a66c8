"""Builds: the host server with CMake + Ninja (Zephyr builds join here later).

A build is incremental (Ninja decides what is stale), its full log is kept beside the
build, and a failure raises BuildError with the tail of that log, because "build failed"
without the compiler's words is useless in a CI report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.boards import Board
from harness.errors import BuildError, ToolchainNotFound

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HOST_SOURCE_DIR = PROJECT_ROOT / "zephyr_app" / "host"
LOG_TAIL_LINES = 40


@dataclass(frozen=True)
class HostArtifacts:
    """What a host build produces."""

    build_dir: Path
    server: Path
    test_library: Path
    log: Path


def _require_tools(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise ToolchainNotFound(
            f"missing build tools for the host server: {', '.join(missing)}. "
            "Install them with: apt-get install --no-install-recommends cmake ninja-build gcc "
            "(or run scripts/bootstrap.sh)."
        )


def _tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no build log)"
    return "\n".join(text[-lines:])


def run_logged(
    command: list[str],
    log: Path,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    what: str,
) -> None:
    """Run ``command`` appending its output to ``log``; raise BuildError with the log's tail."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as sink:
        sink.write(f"\n$ {' '.join(command)}\n".encode())
        sink.flush()
        result = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    if result.returncode != 0:
        raise BuildError(
            f"{what} failed (exit {result.returncode}): {' '.join(command)}\n"
            f"full log: {log}\n--- last {LOG_TAIL_LINES} lines ---\n{_tail(log)}"
        )


def host_build_dir(board: Board, build_root: Path) -> Path:
    return build_root / board.name


_built_this_process: dict[tuple[str, Path], HostArtifacts] = {}


def build_host(board: Board, build_root: Path, *, force: bool = False) -> HostArtifacts:
    """Configure (once) and build the host server for ``board``; cheap when nothing changed.

    A test session starts a fresh device for every test, so the result is remembered for
    the life of the process: Ninja's own no-op check would still cost a fork per test.
    """
    key = (board.name, build_root.resolve())
    if not force and key in _built_this_process:
        return _built_this_process[key]
    artifacts = _build_host(board, build_root)
    _built_this_process[key] = artifacts
    return artifacts


def _build_host(board: Board, build_root: Path) -> HostArtifacts:
    _require_tools("cmake", "ninja", os.environ.get("CC", "cc"))
    build_dir = host_build_dir(board, build_root)
    log = build_dir / "build.log"
    sanitize = "ON" if board.build.get("sanitize", False) else "OFF"
    extra = [str(arg) for arg in board.build.get("cmake_args", [])]
    cache = build_dir / "CMakeCache.txt"
    stamp = build_dir / ".harness-configure"
    configure_key = f"sanitize={sanitize} args={extra}"
    if not cache.exists() or not stamp.exists() or stamp.read_text() != configure_key:
        if log.exists():
            log.unlink()
        run_logged(
            [
                "cmake",
                "-S",
                str(HOST_SOURCE_DIR),
                "-B",
                str(build_dir),
                "-G",
                "Ninja",
                f"-DRPC_SANITIZE={sanitize}",
                "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                *extra,
            ],
            log,
            what=f"configuring the host server for board {board.name!r}",
        )
        stamp.write_text(configure_key)
    run_logged(["ninja", "-C", str(build_dir)], log, what=f"building board {board.name!r}")
    server = build_dir / "rpc_host_server"
    if not server.exists():
        raise BuildError(f"the build finished but {server} is missing; see {log}")
    return HostArtifacts(
        build_dir=build_dir,
        server=server,
        test_library=build_dir / "librpc_server_test.so",
        log=log,
    )
