"""Small helpers shared by the device tests."""

from __future__ import annotations

import json
from typing import Any

from harness.client import Client


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


def expected_boot_count(kind: str, before: int) -> int:
    return 1 if kind == "power" else before + 1
