"""``pytest --board host --lg-place NAME`` in a child pytest against the real local lab."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from labgrid_lab import Lab, labgrid_client

import harness

# The child must import this checkout of the harness, whatever is installed.
HARNESS_ROOT = str(Path(harness.__file__).resolve().parent.parent)
PLUGIN = "harness.pytest_labgrid"


def plugin_args() -> list[str]:
    """``-p harness.pytest_labgrid`` unless the installed package already registers it
    through a pytest11 entry point (naming it twice would be an error)."""
    registered = any(ep.value == PLUGIN for ep in entry_points(group="pytest11"))
    return [] if registered else ["-p", PLUGIN]


DEVICE_TESTS = """
import json
import pytest

def test_calls(client):
    assert client.call("rpc.add", 20, 22) == 42

def test_device_is_the_place(device):
    assert type(device).__name__ == "LabgridTarget"
    assert device.transport.description.startswith("host (serial rfc2217://")

def test_reset(device, client, reset_kind):
    before = json.loads(client.call("rpc.info"))
    device.reset(reset_kind)
    client.reconnect()
    after = json.loads(client.call("rpc.info"))
    assert after["boot_id"] != before["boot_id"]
"""


def run_child(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, build_root: Path, *args: str
) -> pytest.RunResult:
    monkeypatch.setenv("PYTHONPATH", HARNESS_ROOT)
    return pytester.runpytest_subprocess(
        *plugin_args(), "--build-dir", str(build_root), *args, timeout=300
    )


def test_device_suite_runs_on_the_place_and_releases_it(
    lab: Lab, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, build_root: Path
) -> None:
    pytester.makepyfile(DEVICE_TESTS)
    relay_requests_before = len(lab.relay.requests)
    result = run_child(
        pytester,
        monkeypatch,
        build_root,
        "--board",
        "host",
        "--lg-place",
        lab.place,
        "--lg-coordinator",
        lab.coordinator,
        "-v",
    )
    result.stdout.fnmatch_lines([f"labgrid place: {lab.place} on coordinator*"])
    # host lists rpc, hard, power and fatal: every one of them goes through the place.
    result.assert_outcomes(passed=6)
    # The power and hard resets of the child went through the place's relay.
    requests = lab.relay.requests[relay_requests_before:]
    assert "GET /power/0" in requests and "PUT /reset 1" in requests
    show = labgrid_client(lab.coordinator, "-p", lab.place, "show")
    assert "acquired: None" in show


def test_released_when_a_test_fails(
    lab: Lab, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, build_root: Path
) -> None:
    pytester.makepyfile("def test_fails(client):\n    assert client.call('rpc.add', 1, 1) == 3\n")
    result = run_child(
        pytester,
        monkeypatch,
        build_root,
        "--lg-place",
        lab.place,
        "--lg-coordinator",
        lab.coordinator,
    )
    result.assert_outcomes(failed=1)
    assert "acquired: None" in labgrid_client(lab.coordinator, "-p", lab.place, "show")


def test_unknown_place_is_a_usage_error_before_any_test(
    lab: Lab, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, build_root: Path
) -> None:
    pytester.makepyfile("def test_never(): raise AssertionError('must not run')")
    result = run_child(
        pytester,
        monkeypatch,
        build_root,
        "--lg-place",
        "nowhere",
        "--lg-coordinator",
        lab.coordinator,
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--lg-place nowhere*no labgrid place 'nowhere'*"])


def test_released_on_ctrl_c(lab: Lab, pytester: pytest.Pytester, build_root: Path) -> None:
    """SIGINT (what Ctrl-C sends) in the middle of a test on the place still releases it."""
    started = pytester.path / "started"
    pytester.makepyfile(
        f"""
        import pathlib, threading

        def test_waits_for_ctrl_c(client):
            assert client.call("rpc.add", 1, 2) == 3
            pathlib.Path({str(started)!r}).write_text("in the test body")
            threading.Event().wait(120)  # until the SIGINT below
        """
    )
    env = dict(os.environ, PYTHONPATH=HARNESS_ROOT)
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            *plugin_args(),
            "--build-dir",
            str(build_root),
            "--lg-place",
            lab.place,
            "--lg-coordinator",
            lab.coordinator,
        ],
        cwd=pytester.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not started.exists():
            assert child.poll() is None, f"the child pytest ended early:\n{child.stdout.read()}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the child never reached its test body"
            time.sleep(0.1)  # a file is the child's only ready signal we can see
        assert acquired_by_someone(lab)
        child.send_signal(signal.SIGINT)
        output, _ = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert "KeyboardInterrupt" in output
    assert not acquired_by_someone(lab), output


def acquired_by_someone(lab: Lab) -> bool:
    return "acquired: None" not in labgrid_client(lab.coordinator, "-p", lab.place, "show")
