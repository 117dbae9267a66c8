"""The lifecycle every target implements, whatever the board is made of.

Targets own a lifecycle, not a protocol: build -> start -> reset(kind) -> stop. Every kind
of reset goes through the one ``reset(kind)`` call so that tests can be parametrized over
kinds; the protocol (handshake, calls) stays in the client, which only sees bytes.

Every target keeps a wire trace (``target.trace``, see :mod:`harness.trace`) in its work
folder. It is wired here, once, for every kind of board: the trace observes the swappable
transport (every byte, whichever pipe a start or a power reset installs), the console (every
line) and ``reset()`` (every reset asked for and how it ended), so the subclasses, which
only make pipes and processes, need to know nothing about it.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from functools import partial
from pathlib import Path

from harness.boards import Board
from harness.console import Console
from harness.errors import ConfigError
from harness.trace import TRACE_FILE_NAME, Trace
from harness.transport.swappable import SwappableTransport

# Reset kinds the device carries out itself when asked over RPC.
INBAND_RESET_KINDS = ("rpc", "fatal")


class Target(abc.ABC):
    """A device the harness can build, start, reset and stop."""

    def __init__(self, board: Board, *, build_root: Path, work_dir: Path) -> None:
        self.board = board
        self.build_root = build_root
        self.work_dir = work_dir
        work_dir.mkdir(parents=True, exist_ok=True)
        self.trace = Trace(
            work_dir / TRACE_FILE_NAME,
            board=board.name,
            board_kind=board.kind,
            max_packet=board.max_packet,
        )
        self.transport = SwappableTransport(name=board.name, observer=self.trace)
        # Everything the device prints on its console, kept in the test's folder as well.
        self.console = Console(
            work_dir / "console.log", on_line=partial(self.trace.note, "console")
        )
        self._inband_reset: Callable[[str], None] | None = None
        # Where Zephyr-built targets find Zephyr (None: the usual search, see harness.zephyr).
        self.zephyr_base: Path | None = None
        # True from a (re)start until a client sees the boot's wake-up TerminateSession; a
        # client then waits for that ready signal before its StartSessionInit instead of
        # racing the boot.
        self.boot_pending = False

    # -- lifecycle -----------------------------------------------------------------------

    @abc.abstractmethod
    def build(self) -> None:
        """Make sure the firmware for this board is built (incremental)."""

    @abc.abstractmethod
    def start(self) -> None:
        """Bring the device up and attach its RPC channel to ``self.transport``."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Shut the device down; raise TargetError if it died badly (a sanitizer report)."""

    @abc.abstractmethod
    def _physical_reset(self, kind: str) -> None:
        """Carry out a non-RPC reset kind listed in boards.yaml."""

    def post_mortem(self) -> str:
        """What is known about a device that went away (exit status, last console lines)."""
        tail = "\n".join(self.console.lines()[-20:]) or "(no console output)"
        return f"last console lines of {self.board.name}:\n{tail}"

    # -- resets ----------------------------------------------------------------------------

    @property
    def reset_kinds(self) -> tuple[str, ...]:
        return self.board.reset_kinds

    def set_inband_reset(self, reset: Callable[[str], None] | None) -> None:
        """Register how to make the device reset itself (the client calls ``rpc.reset`` for
        kind ``rpc`` and the firmware's ``app.fatal`` for kind ``fatal``)."""
        self._inband_reset = reset

    def reset(self, kind: str) -> None:
        """Reset the device the way ``kind`` says; returns once the reset has been carried out.

        Afterwards the device boots and sends its wake-up TerminateSession; the client's
        ``reconnect()`` waits for it and opens a new session.
        """
        if kind not in self.board.reset_kinds:
            raise ConfigError(
                f"board {self.board.name!r} does not support reset kind {kind!r}; "
                f"it supports {list(self.board.reset_kinds)} (reset_kinds in {self.board.source})"
            )
        self.trace.note("reset", f"reset {kind} requested")
        try:
            self._reset(kind)
        except BaseException as exc:
            self.trace.note("reset", f"reset {kind} failed: {type(exc).__name__}: {exc}")
            raise
        self.trace.note("reset", f"reset {kind} carried out")

    def _reset(self, kind: str) -> None:
        """The reset itself; ``reset`` wraps it so that every outcome lands in the trace."""
        if kind in INBAND_RESET_KINDS:
            if self._inband_reset is None:
                raise ConfigError(
                    f"reset({kind!r}) needs a connected client: use the `client` fixture or "
                    "harness.connect(), which register the in-band reset"
                )
            self._inband_reset(kind)
            return
        self.boot_pending = True
        self._physical_reset(kind)

    def __enter__(self) -> Target:
        self.build()
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.stop()
        finally:
            self.trace.close()


def make_target(board: Board, *, build_root: Path, work_dir: Path) -> Target:
    """The target class for ``board.kind``."""
    if board.kind == "host":
        from harness.targets.host import HostTarget

        return HostTarget(board, build_root=build_root, work_dir=work_dir)
    if board.kind == "qemu":
        from harness.targets.qemu import QemuTarget

        return QemuTarget(board, build_root=build_root, work_dir=work_dir)
    if board.kind == "serial":
        from harness.targets.serial import SerialTarget

        return SerialTarget(board, build_root=build_root, work_dir=work_dir)
    raise ConfigError(
        f"board {board.name!r} has kind {board.kind!r}, which this version of the harness "
        "cannot start (supported: host, qemu, serial)"
    )
