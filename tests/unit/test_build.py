"""Build plumbing: a failing build raises BuildError with the tail of its kept log."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.build import run_logged
from harness.errors import BuildError


def test_failed_build_shows_the_log_tail_and_keeps_the_log(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    script = (
        "for i in $(seq 1 100); do echo line $i; done; echo 'error: the real cause' >&2; exit 3"
    )
    with pytest.raises(BuildError) as caught:
        run_logged(["sh", "-c", script], log, what="building the thing")
    message = str(caught.value)
    assert "building the thing failed (exit 3)" in message
    assert "error: the real cause" in message
    assert "line 100" in message and "line 1\n" not in message, "only the tail is shown"
    assert f"full log: {log}" in message
    assert "line 1\n" in log.read_text(), "the whole log is kept"


def test_successful_build_appends_to_the_log(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    run_logged(["sh", "-c", "echo first"], log, what="step one")
    run_logged(["sh", "-c", "echo second"], log, what="step two")
    text = log.read_text()
    assert text.index("first") < text.index("second")
