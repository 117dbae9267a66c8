"""pytest plugin: ``--lg-place NAME`` runs the device tests on a board in a labgrid lab.

The place is acquired once, at configure time, so that a place held by someone else, an
unknown place or a coordinator that does not answer is a usage error before any test runs,
within the labgrid command deadline. It is released by a config cleanup, which pytest runs
however the session ends: tests passing or failing, an internal error, or Ctrl-C.

While a place is in use, this plugin registers a second plugin object whose ``device``
fixture starts a :class:`~harness.targets.labgrid.LabgridTarget` on the place instead of the
board's usual target. It is registered after the harness plugin, so its ``device`` is the
one pytest picks; ``client``, the reset-kind parametrization and the evidence hooks of the
harness plugin then work unchanged. The board (``--board``) still says what the device can
do: packet size, timeouts and reset kinds.

The coordinator comes from ``--lg-coordinator``, an option of labgrid's own pytest plugin
(registered when labgrid is installed, so it is not defined twice here), else from
LG_COORDINATOR, else labgrid's default 127.0.0.1:20408.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.boards import Board
from harness.errors import ConfigError, HarnessError
from harness.labgrid_place import DEFAULT_COMMAND_TIMEOUT_S, LabgridPlace
from harness.targets.labgrid import LabgridTarget

_PLACE_KEY = pytest.StashKey[LabgridPlace]()
_FIXTURES_PLUGIN_NAME = "uart-rpc-labgrid-device"


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
    config.pluginmanager.register(_PlaceDevice(place), _FIXTURES_PLUGIN_NAME)


def pytest_report_header(config: pytest.Config) -> str | None:
    place = config.stash.get(_PLACE_KEY, None)
    if place is None:
        return None
    return f"labgrid place: {place.name} on coordinator {place.coordinator} (acquired)"


class _PlaceDevice:
    """The ``device`` fixture while a labgrid place is in use."""

    def __init__(self, place: LabgridPlace) -> None:
        self._place = place

    @pytest.fixture
    def device(self, board: Board, build_root: Path, tmp_path: Path) -> Iterator[LabgridTarget]:
        """The device on the acquired place, its serial port opened for this test."""
        if board.kind == "qemu":
            raise ConfigError(
                f"--board {board.name} is a QEMU board, which runs here, not in a lab; pick "
                "the boards.yaml entry of the board that sits on the labgrid place"
            )
        target = LabgridTarget(
            board, self._place, build_root=build_root, work_dir=tmp_path / "device"
        )
        target.trace.note("test", f"labgrid place {self._place.name}: opening its serial port")
        try:
            target.start()
            try:
                yield target
            finally:
                target.trace.note("test", "closing the place's serial port")
                target.stop()
        finally:
            target.trace.close()
