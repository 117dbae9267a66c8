"""``harness.connect()``: one call from a board name to a handshaken client."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from harness.boards import load_boards
from harness.build import PROJECT_ROOT
from harness.client import Client
from harness.targets.base import make_target

DEFAULT_BOARDS_FILE = PROJECT_ROOT / "boards.yaml"
DEFAULT_BUILD_ROOT = PROJECT_ROOT / "build"


@contextlib.contextmanager
def connect(
    board: str = "host",
    *,
    boards_file: Path | str | None = None,
    build_root: Path | str | None = None,
    work_dir: Path | str | None = None,
    handshake: bool = True,
) -> Iterator[Client]:
    """Build if needed, start the target, handshake, and yield a Client.

    The target is reachable as ``client.device`` (for ``client.device.reset(kind)``). On
    exit the client is closed and the target stopped; a target that died badly (a sanitizer
    report, a crash) raises TargetError from here.
    """
    boards = load_boards(boards_file or DEFAULT_BOARDS_FILE)
    spec = boards.get(board)
    with contextlib.ExitStack() as stack:
        if work_dir is None:
            work_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix=f"harness-{board}-"))
        target = make_target(
            spec, build_root=Path(build_root or DEFAULT_BUILD_ROOT), work_dir=Path(work_dir)
        )
        stack.enter_context(target)  # build, start; on exit stop and close its wire trace
        client = Client.for_target(target)
        stack.callback(client.close)
        if handshake:
            client.handshake(spec.timeouts.boot + spec.timeouts.handshake)
        yield client
