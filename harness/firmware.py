"""Which firmware a target runs: board, image hash and Zephyr version, for reports.

A CI result is only worth comparing with another if both ran the same thing, so the
harness puts these three facts in the JUnit XML (see the pytest plugin) and in each wire
trace. The image is what the board boots: the Zephyr ELF for Zephyr builds, the
``rpc_host_server`` executable for host boards (which are not Zephyr builds, and say so
instead of leaving the field out, so a missing value never looks like a harness bug).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.build import HostArtifacts
from harness.targets.base import Target
from harness.zephyr import ZephyrArtifacts, firmware_hash


@dataclass(frozen=True)
class FirmwareIdentity:
    """What ran: the board, a short SHA-256 of the image, and the Zephyr version."""

    board: str
    firmware_hash: str
    zephyr_version: str


def identify(target: Target) -> FirmwareIdentity:
    """The identity of the firmware ``target`` was built with (call after ``build()``)."""
    artifacts = getattr(target, "artifacts", None)
    if isinstance(artifacts, ZephyrArtifacts):
        return FirmwareIdentity(
            board=target.board.name,
            firmware_hash=firmware_hash(artifacts.elf),
            zephyr_version=artifacts.zephyr_version,
        )
    if isinstance(artifacts, HostArtifacts):
        return FirmwareIdentity(
            board=target.board.name,
            firmware_hash=firmware_hash(artifacts.server),
            zephyr_version=f"none: board {target.board.name} is a host build, not a Zephyr build",
        )
    unknown = f"unknown: the harness cannot tell what a {target.board.kind} target runs"
    return FirmwareIdentity(target.board.name, unknown, unknown)


__all__ = ["FirmwareIdentity", "identify"]
