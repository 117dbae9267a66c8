"""Small helpers shared by the device tests."""

from __future__ import annotations

import json
import threading
from typing import Any

from harness.client import Client
from harness.targets.base import INBAND_RESET_KINDS, Target


def device_info(client: Client) -> dict[str, Any]:
    """rpc.info decoded; asserts it is a JSON object so a garbled reply fails loudly."""
    raw = client.call("rpc.info")
    assert isinstance(raw, str), f"rpc.info returned {type(raw).__name__}, not str"
    info = json.loads(raw)
    assert isinstance(info, dict)
    return info


# What the device must report after each reset kind (docs/reset-semantics.md): the
# reset cause, and whether the boot count survives (power loss clears it to 1).
EXPECTED_CAUSE = {
    "rpc": "software",
    "power": "power-on",
    "hard": "reset-pin",
    "fatal": "fatal-error",
}

# The console line each kind of reset leaves, once it has happened on the device.
RESET_CONSOLE_LINE = {
    "rpc": "reset requested",
    "fatal": "fatal error",
    "hard": "boot: ",
    "power": "boot: ",
}


def expected_boot_count(kind: str, before: int, resets: int = 1) -> int:
    return 1 if kind == "power" else before + resets


def assert_rebooted(before: dict[str, Any], after: dict[str, Any], kind: str, resets: int = 1):
    """The boot facts after ``resets`` resets of ``kind``: a new boot id, the boot count the
    kind implies, and the reset cause the kind implies."""
    assert after["boot_id"] != before["boot_id"], "the device did not reboot"
    assert after["boot_count"] == expected_boot_count(kind, before["boot_count"], resets), (
        f"boot count {before['boot_count']} -> {after['boot_count']} after {resets} {kind} reset(s)"
    )
    assert after["reset_cause"] == EXPECTED_CAUSE[kind]


def is_inband(kind: str) -> bool:
    """rpc and fatal resets are carried out by the device when asked over RPC."""
    return kind in INBAND_RESET_KINDS


class PendingCall:
    """A call running on its own thread, so that a test can reset the device under it."""

    def __init__(self, client: Client, name: str, *args: object, timeout: float) -> None:
        self.outcome: list[object] = []
        self._thread = threading.Thread(
            target=self._run, args=(client, name, args, timeout), name=f"call {name}"
        )
        self._thread.start()

    def _run(self, client: Client, name: str, args: tuple[object, ...], timeout: float) -> None:
        try:
            self.outcome.append(client.call(name, *args, timeout=timeout))
        except BaseException as exc:  # the test names what happened
            self.outcome.append(exc)

    def result(self, within: float) -> object:
        """The call's value or the exception it raised; fails the test if it is still hung."""
        self._thread.join(within)
        assert not self._thread.is_alive(), f"the pending call hung for {within}s after the reset"
        return self.outcome[0]


def wait_for_in_order(device: Target, first: str, then: str, timeout: float, start: int) -> None:
    """Both console lines appear, ``then`` after ``first``: proof of where a reset landed."""
    device.console.wait_for(first, timeout, start=start)
    lines = device.console.lines()
    first_index = next(i for i in range(start, len(lines)) if first in lines[i])
    device.console.wait_for(then, timeout, start=first_index + 1)
