"""The pytest plugin: options, fixtures and report hooks.

Registered through the ``pytest11`` entry point, so ``pip install`` is all a project needs.
Problems a user can fix (an unknown board, a broken boards.yaml) are reported at configure
time as usage errors, before any test runs, instead of as a wall of fixture errors.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.boards import Board, BoardsFile, load_boards
from harness.client import Client
from harness.connect import DEFAULT_BOARDS_FILE, DEFAULT_BUILD_ROOT
from harness.errors import ConfigError
from harness.targets.base import Target, make_target
from harness.zephyr import find_zephyr_base, has_zephyr

_BOARDS_KEY = pytest.StashKey[BoardsFile]()
_BOARD_KEY = pytest.StashKey[Board]()
_SEED_KEY = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("uart-rpc", "UART RPC harness")
    group.addoption(
        "--board",
        default="host",
        help="board from boards.yaml to run device tests on (default: host)",
    )
    group.addoption(
        "--boards-file",
        default=None,
        type=Path,
        help=f"boards file (default: {DEFAULT_BOARDS_FILE.name} in the project root)",
    )
    group.addoption(
        "--zephyr-base",
        default=None,
        type=Path,
        help="Zephyr tree for QEMU and hardware boards (default: ZEPHYR_BASE, the west "
        "workspace, or ~/zephyrproject/zephyr)",
    )
    group.addoption(
        "--build-dir",
        default=None,
        type=Path,
        help="root of the build folders, one per board (default: build/ in the project root)",
    )
    group.addoption(
        "--seed",
        default=None,
        type=int,
        help="seed of every random choice the soak tests make (default: a fresh one, printed "
        "in the report header and in each soak's output so that a failure can be replayed)",
    )
    group.addoption(
        "--fault-soak",
        default=500,
        type=int,
        metavar="N",
        help="calls the fault-injection soak sends through the faulty line (default: 500)",
    )
    group.addoption(
        "--reset-soak",
        default=20,
        type=int,
        metavar="N",
        help="random resets (kind and timing from the seed) the reset soak makes, with calls "
        "in between (default: 20; raise it for hardware-in-the-loop runs)",
    )
    group.addoption(
        "--wire-trace",
        action="store_true",
        default=False,
        help="keep the wire trace of passing tests too (it is always kept for failing ones); "
        "pytest itself owns --trace (it starts the debugger)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "reset_kind(kind): the test needs the board to support this reset kind"
    )
    boards_file = config.getoption("--boards-file") or DEFAULT_BOARDS_FILE
    try:
        boards = load_boards(boards_file)
        board = boards.get(config.getoption("--board"))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_BOARDS_KEY] = boards
    config.stash[_BOARD_KEY] = board
    seed = config.getoption("--seed")
    config.stash[_SEED_KEY] = secrets.randbits(32) if seed is None else seed


def pytest_report_header(config: pytest.Config) -> str:
    board = config.stash.get(_BOARD_KEY, None)
    if board is None:
        return ""
    seed = config.stash[_SEED_KEY]
    return (
        f"board: {board.name} (kind {board.kind}; reset kinds {', '.join(board.reset_kinds)}); "
        f"seed: {seed} (replay with --seed {seed})"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``reset_kind`` as an argument means: run once per reset kind the board supports."""
    if "reset_kind" in metafunc.fixturenames:
        board = metafunc.config.stash[_BOARD_KEY]
        metafunc.parametrize("reset_kind", list(board.reset_kinds))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    board = config.stash[_BOARD_KEY]
    for item in items:
        for marker in item.iter_markers("reset_kind"):
            kind = marker.args[0]
            if not board.supports_reset(kind):
                item.add_marker(
                    pytest.mark.skip(
                        reason=f"board {board.name} does not support reset kind {kind!r}"
                    )
                )


@pytest.fixture(scope="session")
def board(pytestconfig: pytest.Config) -> Board:
    """The validated boards.yaml entry selected with --board."""
    return pytestconfig.stash[_BOARD_KEY]


@pytest.fixture(scope="session")
def seed(pytestconfig: pytest.Config) -> int:
    """The run's seed for random choices (--seed, or a fresh one shown in the header)."""
    return pytestconfig.stash[_SEED_KEY]


@pytest.fixture(scope="session")
def build_root(pytestconfig: pytest.Config) -> Path:
    return Path(pytestconfig.getoption("--build-dir") or DEFAULT_BUILD_ROOT)


@pytest.fixture(scope="session")
def zephyr_base(pytestconfig: pytest.Config, board: Board) -> Path | None:
    """The Zephyr tree for boards built with Zephyr; skips their tests where there is none."""
    if board.kind == "host":
        return None
    explicit = pytestconfig.getoption("--zephyr-base")
    reason = has_zephyr(explicit)
    if reason is not None:
        pytest.skip(f"board {board.name} needs Zephyr: {reason}")
    return find_zephyr_base(explicit)


@pytest.fixture
def device(
    board: Board, build_root: Path, tmp_path: Path, zephyr_base: Path | None
) -> Iterator[Target]:
    """The started target for --board, fresh for each test; ``device.reset(kind)`` resets it.

    Stopping it raises if the device died badly (a sanitizer report), which fails the test
    in its teardown rather than letting the report go unread.
    """
    target = make_target(board, build_root=build_root, work_dir=tmp_path / "device")
    target.zephyr_base = zephyr_base
    target.build()
    target.start()
    try:
        yield target
    finally:
        target.stop()


@pytest.fixture
def client(device: Target, board: Board) -> Iterator[Client]:
    """A client with a session already open on ``device``."""
    connection = Client.for_target(device)
    connection.handshake(board.timeouts.boot + board.timeouts.handshake)
    try:
        yield connection
    finally:
        connection.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the device's console and the protocol logs to the report of a failed test."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.when not in ("call", "teardown") or not report.failed:
        return
    funcargs = getattr(item, "funcargs", {})
    target = funcargs.get("device")
    if isinstance(target, Target):
        report.sections.append(("device console", target.console.text() or "(empty)"))
    connection = funcargs.get("client")
    if isinstance(connection, Client):
        report.sections.append(("device log messages", "\n".join(connection.logs) or "(none)"))
        report.sections.append(("client stats", repr(connection.stats)))
