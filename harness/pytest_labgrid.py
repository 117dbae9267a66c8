"""pytest plugin: ``--lg-place NAME`` runs the device tests on a board in a labgrid lab.

The place is acquired once, at configure time, so that a place held by someone else, an
unknown place or a coordinator that does not answer is a usage error before any test runs,
within the labgrid command deadline. It is released by a config cleanup, which pytest runs
however the session ends: tests passing or failing, an internal error, or Ctrl-C.

While a place is in use, the harness plugin's ``device`` fixture makes a
:class:`~harness.targets.labgrid.LabgridTarget` on the place instead of the board's usual
target (through ``TARGET_FACTORY_KEY``); ``client``, the reset-kind parametrization, the wire
trace and its report sections, and the JUnit properties then work unchanged. The board
(``--board``) still says what the device can do: packet size, timeouts and reset kinds.

The coordinator comes from ``--lg-coordinator``, an option of labgrid's own pytest plugin
(registered when labgrid is installed, so it is not defined twice here), else from
LG_COORDINATOR, else labgrid's default 127.0.0.1:20408.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from harness.boards import Board
from harness.errors import ConfigError, HarnessError
from harness.labgrid_place import DEFAULT_COMMAND_TIMEOUT_S, LabgridPlace
from harness.pytest_plugin import TARGET_FACTORY_KEY
from harness.targets.labgrid import LabgridTarget

_PLACE_KEY = pytest.StashKey[LabgridPlace]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("uart-rpc-labgrid", "UART RPC harness: labgrid shared labs")
    group.addoption(
        "--lg-place",
        default=None,
        metavar="NAME",
        help="run the device tests on this labgrid place (acquired for the run, released at "
        "the end); --board still names the boards.yaml entry that describes the device",
    )
    group.addoption(
        "--lg-timeout",
        default=DEFAULT_COMMAND_TIMEOUT_S,
        type=float,
        metavar="SECONDS",
        help="deadline of each labgrid command: acquire, release, power, io "
        f"(default: {DEFAULT_COMMAND_TIMEOUT_S:g})",
    )


def pytest_configure(config: pytest.Config) -> None:
    name = config.getoption("--lg-place")
    if name is None:
        return
    try:
        place = LabgridPlace(
            name,
            # labgrid's own pytest plugin (installed with labgrid) owns --lg-coordinator.
            coordinator=config.getoption("lg_coordinator", default=None),
            command_timeout=config.getoption("--lg-timeout"),
        )
        place.acquire()
    except HarnessError as exc:
        raise pytest.UsageError(f"--lg-place {name}: {exc}") from None
    config.add_cleanup(place.release)
    config.stash[_PLACE_KEY] = place
    config.stash[TARGET_FACTORY_KEY] = functools.partial(_target_on_place, place)


def _target_on_place(
    place: LabgridPlace, board: Board, build_root: Path, work_dir: Path
) -> LabgridTarget:
    """The harness's ``device`` fixture makes its target here while a place is in use."""
    if board.kind == "qemu":
        raise ConfigError(
            f"--board {board.name} is a QEMU board, which runs here, not in a lab; pick "
            "the boards.yaml entry of the board that sits on the labgrid place"
        )
    target = LabgridTarget(board, place, build_root=build_root, work_dir=work_dir)
    target.trace.note("test", f"labgrid place {place.name}")
    return target


def pytest_report_header(config: pytest.Config) -> str | None:
    place = config.stash.get(_PLACE_KEY, None)
    if place is None:
        return None
    return f"labgrid place: {place.name} on coordinator {place.coordinator} (acquired)"
