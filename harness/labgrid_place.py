"""A labgrid place, driven through ``labgrid-client``: acquire, look up, power, reset, release.

Shared labs already have an engine for who may use which board: labgrid's coordinator knows
the places, its exporters share each place's serial ports (ser2net, RFC 2217) and power
switches. This module is the harness's one door to it. It talks to labgrid through its
command-line client rather than its Python internals on purpose: the CLI is labgrid's stable
interface, it chooses the right labgrid driver for whatever power switch or digital output a
place has, and every command runs in its own process, so a coordinator that does not answer
can be given a deadline (the process is killed) instead of hanging the test run.

Each failure a user can meet is its own error type, and each message names the place, the
coordinator and the fix.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from dataclasses import dataclass

import yaml

from harness.errors import ConfigError, HarnessError, TargetError

DEFAULT_COORDINATOR = "127.0.0.1:20408"
"""labgrid's own default, used when neither an option nor LG_COORDINATOR names one."""

DEFAULT_COMMAND_TIMEOUT_S = 30.0
"""The longest one labgrid-client command may take before the place is reported stuck."""

_CLEANUP_TIMEOUT_S = 10.0
"""Deadline of the release that undoes an interrupted acquire."""

# Resource classes (as the coordinator reports them) through which `labgrid-client power`
# switches a place's power, and through which `labgrid-client io` drives a reset line.
POWER_RESOURCES = (
    "NetworkPowerPort",
    "PDUDaemonPort",
    "NetworkUSBPowerPort",
    "NetworkSiSPMPowerPort",
    "TasmotaPowerPort",
    "NetworkYKUSHPowerPort",
)
RESET_OUTPUT_RESOURCES = (
    "HttpDigitalOutput",
    "ModbusTCPCoil",
    "NetworkDeditecRelais8",
    "NetworkSysfsGPIO",
    "NetworkLXAIOBusPIO",
    "NetworkHIDRelay",
    "OneWirePIO",
)
SERIAL_RESOURCE = "NetworkSerialPort"


class LabgridError(TargetError):
    """A labgrid place could not be used; the message names the place, coordinator and fix."""


class LabgridNotInstalledError(ConfigError):
    """labgrid-client is not on PATH."""


class CoordinatorUnreachableError(LabgridError):
    """The labgrid coordinator did not answer."""


class UnknownPlaceError(LabgridError):
    """The coordinator has no place of that name."""


class PlaceTakenError(LabgridError):
    """Someone else holds the place."""


class PlaceResourceError(LabgridError):
    """The place lacks a resource the harness needs (a network serial port, a power switch)."""


class LabgridCommandTimeoutError(LabgridError):
    """A labgrid-client command did not finish within its deadline."""


@dataclass(frozen=True)
class PlaceResource:
    """One resource of an acquired place, as `labgrid-client env` describes it."""

    cls: str
    name: str | None
    params: dict[str, object]


class LabgridPlace:
    """One place on one coordinator; ``acquire()`` it, use it, ``release()`` it.

    Also a context manager, whose exit releases the place on any way out, Ctrl-C included.
    """

    def __init__(
        self,
        name: str,
        *,
        coordinator: str | None = None,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT_S,
        client_command: str = "labgrid-client",
    ) -> None:
        if not name or any(ch.isspace() for ch in name):
            raise ConfigError(
                f"labgrid place name {name!r} is not valid; give the name `labgrid-client "
                "places` lists, e.g. --lg-place my-board"
            )
        self.name = name
        self.coordinator = coordinator or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR
        self.command_timeout = command_timeout
        self._client_command = client_command
        self._acquired = False
        self._resources: tuple[PlaceResource, ...] | None = None

    def __repr__(self) -> str:
        return f"LabgridPlace({self.name!r} on {self.coordinator})"

    @property
    def acquired(self) -> bool:
        return self._acquired

    # -- the labgrid-client command ----------------------------------------------------------

    def _executable(self) -> str:
        path = shutil.which(self._client_command)
        if path is None:
            raise LabgridNotInstalledError(
                f"{self._client_command} not found on PATH, so labgrid place {self.name!r} "
                "cannot be used; install labgrid (pip install labgrid) in this environment"
            )
        return path

    def run(self, *args: str, timeout: float | None = None) -> str:
        """Run ``labgrid-client -x COORDINATOR -p PLACE ARGS``; return its stdout.

        A failure is classified into the typed errors above from what labgrid printed.
        """
        timeout = self.command_timeout if timeout is None else timeout
        command = [self._executable(), "-x", self.coordinator, "-p", self.name, *args]
        what = " ".join(args)
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise LabgridCommandTimeoutError(
                f"`labgrid-client -p {self.name} {what}` did not finish within {timeout:.0f}s "
                f"(coordinator {self.coordinator}); check that the coordinator and the place's "
                "exporter are up (`labgrid-client places`, `labgrid-client resources`)"
            ) from None
        if done.returncode != 0:
            raise self._classify(what, done.stdout + done.stderr)
        return done.stdout

    def _classify(self, what: str, output: str) -> LabgridError:
        text = " ".join(output.split())
        lowered = text.lower()
        if "could not connect to coordinator" in lowered or "coordinator is unavailable" in lowered:
            return CoordinatorUnreachableError(
                f"labgrid coordinator {self.coordinator} is unreachable (wanted place "
                f"{self.name!r}); start it, or point at the right one with --lg-coordinator "
                f"HOST:PORT or LG_COORDINATOR. labgrid said: {text}"
            )
        if "matches nothing" in lowered or "unknown place" in lowered:
            return UnknownPlaceError(
                f"coordinator {self.coordinator} has no labgrid place {self.name!r}; "
                f"`labgrid-client -x {self.coordinator} places` lists the places there. "
                f"labgrid said: {text}"
            )
        if "you have already acquired" in lowered:
            return PlaceTakenError(
                f"labgrid place {self.name!r} on {self.coordinator} is already held by this "
                "user, probably by an earlier run that was killed before it could release it, "
                "or by another session of yours. If nothing of yours is using it, release it "
                f"with `labgrid-client -x {self.coordinator} -p {self.name} release`. "
                f"labgrid said: {text}"
            )
        if "already acquired" in lowered or "acquired by" in lowered:
            return PlaceTakenError(
                f"labgrid place {self.name!r} on {self.coordinator} is held by someone else; "
                f"wait for them to release it (`labgrid-client -p {self.name} show` says "
                f"who), or pick another place. labgrid said: {text}"
            )
        return LabgridError(
            f"`labgrid-client -p {self.name} {what}` failed on coordinator "
            f"{self.coordinator}: {text or '(no output)'}"
        )

    # -- lifecycle --------------------------------------------------------------------------

    def acquire(self) -> None:
        """Take the place for this user and host; fails at once if someone else has it."""
        if self._acquired:
            return
        try:
            self.run("acquire")
        except (KeyboardInterrupt, LabgridCommandTimeoutError):
            # The coordinator may have granted the place just before we stopped waiting;
            # give it back so that an interrupted start does not leave the place locked.
            with contextlib.suppress(HarnessError, subprocess.SubprocessError, OSError):
                self.run("release", timeout=min(self.command_timeout, _CLEANUP_TIMEOUT_S))
            raise
        self._acquired = True

    def release(self) -> None:
        """Give the place back; a no-op if this object never acquired it."""
        if not self._acquired:
            return
        self._acquired = False
        self._resources = None
        self.run("release")

    def __enter__(self) -> LabgridPlace:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    # -- what the place has -------------------------------------------------------------------

    def resources(self) -> tuple[PlaceResource, ...]:
        """The acquired place's resources, from the environment labgrid generates for it."""
        if not self._acquired:
            raise LabgridError(f"labgrid place {self.name!r}: acquire() it before using it")
        if self._resources is None:
            self._resources = parse_environment(self.run("env"), self.name)
        return self._resources

    def _find(self, classes: tuple[str, ...]) -> PlaceResource | None:
        return next((r for r in self.resources() if r.cls in classes), None)

    def serial_url(self) -> str:
        """The pyserial URL of the place's network serial port (ser2net on the exporter):
        RFC 2217, or a plain TCP socket for a port exported with protocol ``raw``."""
        port = self._find((SERIAL_RESOURCE,))
        if port is None:
            have = ", ".join(r.cls for r in self.resources()) or "none"
            raise PlaceResourceError(
                f"labgrid place {self.name!r} has no {SERIAL_RESOURCE} (it has: {have}); "
                "export the board's UART as a RawSerialPort or USBSerialPort on its exporter "
                "and add it to the place with `labgrid-client add-match`"
            )
        address = f"{port.params['host']}:{port.params['port']}"
        if port.params.get("protocol", "rfc2217") == "raw":
            return f"socket://{address}"
        # ser2net does not answer RFC 2217 SET_CONTROL (flow control, modem lines); without
        # this option pyserial waits for that answer and fails to open the port.
        return f"rfc2217://{address}?ign_set_control"

    def serial_speed(self) -> int | None:
        port = self._find((SERIAL_RESOURCE,))
        speed = port.params.get("speed") if port is not None else None
        return int(speed) if isinstance(speed, int) else None

    @property
    def has_power(self) -> bool:
        return self._find(POWER_RESOURCES) is not None

    @property
    def has_reset_output(self) -> bool:
        return self._find(RESET_OUTPUT_RESOURCES) is not None

    # -- power and reset ------------------------------------------------------------------------

    def power_cycle(self, off_seconds: float = 1.0) -> None:
        """Switch the place's power off and on again through its labgrid power driver."""
        self._require(self.has_power, "power", "a power switch (e.g. NetworkPowerPort)")
        self.run("power", "cycle", "--delay", f"{off_seconds:g}")

    def pulse_reset(self) -> None:
        """Assert and release the place's reset line (its labgrid digital output)."""
        needed = "a digital output wired to reset (e.g. HttpDigitalOutput)"
        self._require(self.has_reset_output, "hard", needed)
        self.run("io", "high")
        self.run("io", "low")

    def _require(self, present: bool, kind: str, needed: str) -> None:
        if not present:
            have = ", ".join(r.cls for r in self.resources()) or "none"
            raise PlaceResourceError(
                f"a {kind!r} reset needs labgrid place {self.name!r} to have {needed}; it has: "
                f"{have}. Add one to the place, or drop {kind!r} from the board's reset_kinds"
            )


def parse_environment(text: str, place: str) -> tuple[PlaceResource, ...]:
    """The resources in the YAML `labgrid-client env` prints for an acquired place."""
    try:
        data = yaml.safe_load(text)
        entries = data["targets"][place]["resources"]
    except (yaml.YAMLError, KeyError, TypeError) as exc:
        raise LabgridError(
            f"cannot read the environment labgrid generated for place {place!r} ({exc}); "
            f"run `labgrid-client -p {place} env` to see it"
        ) from exc
    resources: list[PlaceResource] = []
    for entry in entries or []:
        if not isinstance(entry, dict) or len(entry) != 1:
            raise LabgridError(f"place {place!r}: unexpected resource entry {entry!r}")
        ((cls, params),) = entry.items()
        params = dict(params or {})
        name = params.pop("name", None)
        resources.append(PlaceResource(cls=cls, name=name, params=params))
    return tuple(resources)
