"""The pytest plugin: options, fixtures and report hooks.

Registered through the ``pytest11`` entry point, so ``pip install`` is all a project needs.
Problems a user can fix (an unknown board, a broken boards.yaml) are reported at configure
time as usage errors, before any test runs, instead of as a wall of fixture errors.

Evidence (docs/evidence.md): every device test records a wire trace in its device folder;
a failed test gets it in its report and keeps it on disk (its path is the ``wire_trace``
property of the test case in the JUnit XML), a passing test's trace is deleted unless
``--wire-trace`` asks to keep it. The JUnit XML also names the board, the firmware hash and
the Zephyr version as test-suite properties.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from harness.boards import Board, BoardsFile, load_boards
from harness.client import Client
from harness.connect import DEFAULT_BOARDS_FILE, DEFAULT_BUILD_ROOT
from harness.errors import ConfigError
from harness.firmware import FirmwareIdentity, identify
from harness.targets.base import Target, make_target
from harness.trace import Trace, TraceFormatError, read_trace
from harness.trace_format import render
from harness.zephyr import find_zephyr_base, has_zephyr

_BOARDS_KEY = pytest.StashKey[BoardsFile]()
_BOARD_KEY = pytest.StashKey[Board]()
_SEED_KEY = pytest.StashKey[int]()

TargetFactory = Callable[[Board, Path, Path], Target]
"""Makes the target for a board: (board, build_root, work_dir) -> an unstarted Target."""
TARGET_FACTORY_KEY = pytest.StashKey[TargetFactory]()
"""Set by a plugin that runs the device somewhere else (``harness.pytest_labgrid`` for a
labgrid place); the ``device`` fixture then gets its target from it and keeps everything else
(the wire trace, its report sections, the JUnit properties) the same."""
_IDENTITY_KEY = pytest.StashKey[FirmwareIdentity]()
_TRACE_KEY = pytest.StashKey[Trace]()
_TRACE_KEPT_KEY = pytest.StashKey[bool]()
TRACE_REPORT_LINES = 300
"""Lines of the formatted trace (its end) put in a failed test's report; the file has all."""


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
    if board.kind == "host" or not board.zephyr_board:
        return None  # nothing to build with Zephyr (a host build, or a board flashed by command)
    explicit = pytestconfig.getoption("--zephyr-base")
    reason = has_zephyr(explicit)
    if reason is not None:
        pytest.skip(f"board {board.name} needs Zephyr: {reason}")
    return find_zephyr_base(explicit)


@pytest.fixture
def device(
    request: pytest.FixtureRequest,
    board: Board,
    build_root: Path,
    tmp_path: Path,
    zephyr_base: Path | None,
) -> Iterator[Target]:
    """The started target for --board, fresh for each test; ``device.reset(kind)`` resets it.

    Stopping it raises if the device died badly (a sanitizer report), which fails the test
    in its teardown rather than letting the report go unread. Its wire trace
    (``device.trace``) is closed after the device stops, so it ends with the last console
    line of the shutdown.
    """
    factory = request.config.stash.get(TARGET_FACTORY_KEY, None)
    if factory is None:
        target = make_target(board, build_root=build_root, work_dir=tmp_path / "device")
    else:
        target = factory(board, build_root, tmp_path / "device")
    target.zephyr_base = zephyr_base
    request.node.stash[_TRACE_KEY] = target.trace
    target.trace.note("test", f"{request.node.nodeid}: building and starting the device")
    try:
        target.build()
        identity = identify(target)
        target.trace.note(
            "firmware", f"sha256 {identity.firmware_hash}; zephyr {identity.zephyr_version}"
        )
        _record_identity(request, identity)
        target.start()
        try:
            yield target
        finally:
            target.trace.note("test", "stopping the device")
            target.stop()
    finally:
        target.trace.close()


def _record_identity(request: pytest.FixtureRequest, identity: FirmwareIdentity) -> None:
    """Board, firmware hash, Zephyr version and seed as JUnit test-suite properties, once a run."""
    if _IDENTITY_KEY in request.config.stash:
        return
    request.config.stash[_IDENTITY_KEY] = identity
    try:
        record: Callable[[str, object], None] = request.getfixturevalue("record_testsuite_property")
    except pytest.FixtureLookupError:  # the junitxml plugin is disabled
        return
    record("board", identity.board)
    record("firmware_hash", identity.firmware_hash)
    record("zephyr_version", identity.zephyr_version)
    # The run's seed, so that a soak that failed in CI can be replayed from its XML alone.
    record("seed", request.config.stash[_SEED_KEY])


@pytest.fixture
def client(device: Target, board: Board) -> Iterator[Client]:
    """A client with a session already open on ``device``; the device's Log messages it
    accepts are noted in the wire trace as ``client-log`` (what the client saw, after any
    fault injection, as opposed to the raw bytes on the wire)."""
    connection = Client.for_target(device, on_log=partial(device.trace.note, "client-log"))
    connection.handshake(board.timeouts.boot + board.timeouts.handshake)
    try:
        yield connection
    finally:
        connection.close()


def _trace_section(trace: Trace) -> str:
    """The end of the formatted trace, under the file's path and how to print all of it."""
    try:
        text = render(read_trace(trace.path), tail=TRACE_REPORT_LINES)
    except TraceFormatError as exc:
        text = f"(cannot format the trace: {exc})"
    return (
        f"file: {trace.path}\nprint all of it: python -m harness trace --full {trace.path}\n{text}"
    )


def _crash_message(report: pytest.TestReport) -> str:
    """The one-line reason pytest shows for a failure (the assertion, the exception)."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    return str(report.longrepr).strip().splitlines()[-1] if report.longrepr else ""


def _handle_trace(item: pytest.Item, report: pytest.TestReport) -> None:
    """Note each phase's outcome in the trace; keep and attach it at the first failure;
    at teardown, delete a passing test's trace unless --wire-trace keeps it."""
    trace = item.stash.get(_TRACE_KEY, None)
    if trace is None:
        return
    if report.when == "setup" and report.passed:
        trace.note("test", "setup passed; the test body starts")
    elif report.when == "call":
        verdict = f"failed: {_crash_message(report)}" if report.failed else report.outcome
        trace.note("test", f"the test body {verdict}")
    kept = item.stash.get(_TRACE_KEPT_KEY, False)
    if report.failed and not kept:
        item.stash[_TRACE_KEPT_KEY] = kept = True
        # On the item too: a later phase's report (which JUnit reads) copies its properties.
        item.user_properties.append(("wire_trace", str(trace.path)))
        report.user_properties.append(("wire_trace", str(trace.path)))
        report.sections.append(("wire trace", _trace_section(trace)))
    if report.when != "teardown" or kept:
        return
    if item.config.getoption("--wire-trace"):
        report.user_properties.append(("wire_trace", str(trace.path)))
    else:
        trace.close()  # already closed by the device fixture; this makes sure
        trace.path.unlink(missing_ok=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Handle the wire trace, and attach the device's console and the protocol logs to the
    report of a failed test."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    _handle_trace(item, report)
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
