"""examples/labgrid/environment.yaml is a working labgrid environment, checked by labgrid.

The example names a place and a coordinator of a lab that does not exist here, so the test
gives the local lab a place of the example's name (matching the same exporter) and lets
labgrid-client, driven by the example file, acquire it, bind the example's drivers (power,
digital output) and release it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from labgrid_lab import Lab, labgrid_client

import harness

EXAMPLES = Path(harness.__file__).resolve().parent.parent / "examples" / "labgrid"


def run_with_example(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["labgrid-client", "-x", lab.coordinator, "-c", str(EXAMPLES / "environment.yaml"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_example_environment_drives_a_place(lab: Lab) -> None:
    environment = yaml.safe_load((EXAMPLES / "environment.yaml").read_text())
    place = environment["targets"]["main"]["resources"]["RemotePlace"]["name"]
    labgrid_client(lab.coordinator, "-p", place, "create")
    try:
        labgrid_client(lab.coordinator, "-p", place, "add-match", f"{lab.exporter_name}/*/*")
        acquired = run_with_example(lab, "acquire")
        assert acquired.returncode == 0, acquired.stderr
        try:
            for command in (("power", "get"), ("io", "get")):
                done = run_with_example(lab, *command)
                assert done.returncode == 0, f"{command}: {done.stderr}"
            assert "power for place" in run_with_example(lab, "power", "get").stdout
        finally:
            released = run_with_example(lab, "release")
            assert released.returncode == 0, released.stderr
    finally:
        labgrid_client(lab.coordinator, "-p", place, "delete")


def test_example_exporter_declares_what_the_harness_uses() -> None:
    exporter = yaml.safe_load((EXAMPLES / "exporter.yaml").read_text())
    ((group, resources),) = exporter.items()
    assert "USBSerialPort" in resources or "RawSerialPort" in resources, group
    assert "NetworkPowerPort" in resources
    assert "HttpDigitalOutput" in resources
