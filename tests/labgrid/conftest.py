"""The local labgrid lab every test here runs against, started once per session.

Skipped, with the reason, where labgrid or ser2net is not installed: the tests need the
real coordinator, exporter and ser2net, never stand-ins.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from labgrid_lab import Lab

from harness.boards import load_boards
from harness.build import build_host
from harness.connect import DEFAULT_BOARDS_FILE


def _missing_tool() -> str | None:
    for tool, how in (
        ("labgrid-coordinator", "pip install labgrid"),
        ("labgrid-exporter", "pip install labgrid"),
        ("labgrid-client", "pip install labgrid"),
    ):
        if shutil.which(tool) is None:
            return f"{tool} is not installed ({how})"
    if shutil.which("ser2net") is None and not Path("/usr/sbin/ser2net").exists():
        return "ser2net is not installed (apt-get install ser2net)"
    return None


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory, build_root: Path) -> Iterator[Lab]:
    """Coordinator, exporter and a pty board on loopback, torn down after the session."""
    missing = _missing_tool()
    if missing is not None:
        pytest.skip(f"the labgrid tests need a real labgrid lab: {missing}")
    host_board = load_boards(DEFAULT_BOARDS_FILE).get("host")
    server = build_host(host_board, build_root).server
    lab = Lab(server, tmp_path_factory.mktemp("labgrid-lab"))
    try:
        yield lab
    finally:
        lab.close()
