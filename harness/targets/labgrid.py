"""A board in a shared lab: an acquired labgrid place, reached over its network serial port.

The board entry in boards.yaml still says what the device can do (packet size, timeouts,
reset kinds); the place says where it is. The RPC channel is the place's NetworkSerialPort
(ser2net on the exporter, RFC 2217 on the wire) opened with the harness's own serial
transport, so frames never pass through labgrid's console driver, which is written for text.
Resets that come from outside map to the place's labgrid drivers: ``power`` to its power
switch, ``hard`` to a digital output wired to the reset line; ``rpc`` and ``fatal`` stay the
device's own, as on every board.

The place is acquired and released by whoever created it (the pytest plugin for the whole
run, or :func:`connect_place` below), not per test: acquiring is a
decision about sharing a lab, and it should not flap between tests.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from harness.boards import Board, load_boards
from harness.client import Client
from harness.connect import DEFAULT_BOARDS_FILE, DEFAULT_BUILD_ROOT
from harness.errors import ConfigError
from harness.labgrid_place import LabgridPlace
from harness.targets.base import Target
from harness.transport.serial_port import SerialTransport

DEFAULT_BAUD = 115200


class LabgridTarget(Target):
    """The device on an acquired labgrid place."""

    def __init__(
        self,
        board: Board,
        place: LabgridPlace,
        *,
        build_root: Path,
        work_dir: Path,
        power_off_seconds: float = 1.0,
    ) -> None:
        super().__init__(board, build_root=build_root, work_dir=work_dir)
        self.place = place
        self.power_off_seconds = power_off_seconds

    def build(self) -> None:
        """Nothing to build here: the place's board runs the firmware it was flashed with.

        Flashing through labgrid (its flashing drivers run on the exporter) is not part of
        this target yet; flash the board before the run.
        """

    def start(self) -> None:
        """Open the place's network serial port; the device is already running.

        No boot is awaited: the board booted before we came, so its wake-up packet is long
        gone, and the client's first StartSessionInit is what a new host sends to a running
        device (the "host restart" case of docs/reset-semantics.md). Input that was waiting
        from earlier users is flushed when the port opens.
        """
        url = self.place.serial_url()
        baud = self.place.serial_speed() or DEFAULT_BAUD
        self.boot_pending = False
        self.trace.note("transport", f"labgrid place {self.place.name}: {url} at {baud} baud")
        self.transport.replace(SerialTransport(url, baud=baud, exclusive=False))

    def stop(self) -> None:
        self.transport.close()

    def _physical_reset(self, kind: str) -> None:
        if kind == "power":
            self.place.power_cycle(self.power_off_seconds)
        elif kind == "hard":
            self.place.pulse_reset()
        else:
            raise ConfigError(
                f"a labgrid place cannot do a {kind!r} reset (it maps power and hard resets)"
            )

    def post_mortem(self) -> str:
        return f"labgrid place {self.place.name} on {self.place.coordinator}. " + (
            super().post_mortem()
        )


@contextlib.contextmanager
def connect_place(
    board: str,
    place: str,
    *,
    coordinator: str | None = None,
    boards_file: Path | str | None = None,
    work_dir: Path | str | None = None,
    command_timeout: float | None = None,
) -> Iterator[Client]:
    """Acquire labgrid place ``place``, handshake with the device on it, yield a Client.

    ``board`` is the boards.yaml entry that describes the device (limits, timeouts, reset
    kinds); ``coordinator`` defaults to LG_COORDINATOR. The place is released on the way
    out whatever happened, Ctrl-C included.
    """
    spec = load_boards(boards_file or DEFAULT_BOARDS_FILE).get(board)
    options = {} if command_timeout is None else {"command_timeout": command_timeout}
    with contextlib.ExitStack() as stack:
        lab = stack.enter_context(LabgridPlace(place, coordinator=coordinator, **options))
        if work_dir is None:
            work_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix=f"harness-{place}-"))
        target = LabgridTarget(spec, lab, build_root=DEFAULT_BUILD_ROOT, work_dir=Path(work_dir))
        stack.enter_context(target)  # start; on exit stop and close its wire trace
        client = Client.for_target(target)
        stack.callback(client.close)
        client.handshake(spec.timeouts.handshake)
        yield client
