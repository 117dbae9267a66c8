"""A board in a labgrid lab, end to end: acquire, handshake, calls, resets, release, errors.

Everything runs against the real labgrid coordinator and exporter of the ``lab`` fixture; the
device is the host server behind a pty that ser2net shares over RFC 2217.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from typing import Any

import pytest
from labgrid_lab import Lab, free_port, labgrid_client

from harness.client import Client
from harness.labgrid_place import (
    CoordinatorUnreachableError,
    LabgridCommandTimeoutError,
    LabgridPlace,
    PlaceResourceError,
    PlaceTakenError,
    UnknownPlaceError,
    parse_environment,
)
from harness.targets.labgrid import connect_place

needs_labgrid_client = pytest.mark.skipif(
    shutil.which("labgrid-client") is None,
    reason="labgrid-client is not installed (pip install labgrid)",
)
OTHER_USER = {"LG_USERNAME": "someone-else", "LG_HOSTNAME": "another-host"}


def info(client: Client) -> dict[str, Any]:
    raw = client.call("rpc.info")
    assert isinstance(raw, str)
    return json.loads(raw)


def acquired_by(lab: Lab) -> str:
    """Who holds the place, as the coordinator says ("None" when free)."""
    for line in labgrid_client(lab.coordinator, "-p", lab.place, "show").splitlines():
        if line.strip().startswith("acquired:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("labgrid-client show printed no 'acquired:' line")


def test_handshake_and_calls_through_the_place(lab: Lab) -> None:
    with connect_place("host", lab.place, coordinator=lab.coordinator) as client:
        assert acquired_by(lab) != "None"
        assert client.session_id is not None
        assert client.call("rpc.add", 2, 3) == 5
        # Every byte value, the framing's escape and start bytes included, through ser2net.
        payload = bytes(range(256)) + b"\xff\xfd\xff\xff"
        assert client.call("rpc.echo", payload) == payload
        assert info(client)["boot_count"] >= 1
    assert acquired_by(lab) == "None"


def test_power_reset_is_the_places_power_switch(lab: Lab) -> None:
    with connect_place("host", lab.place, coordinator=lab.coordinator) as client:
        before = info(client)
        assert client.device is not None
        client.device.reset("power")
        client.reconnect()
        after = info(client)
    assert after["boot_id"] != before["boot_id"]
    assert after["boot_count"] == 1
    assert after["reset_cause"] == "power-on"
    assert "GET /power/0" in lab.relay.requests and "GET /power/1" in lab.relay.requests


def test_hard_reset_is_the_places_reset_output(lab: Lab) -> None:
    with connect_place("host", lab.place, coordinator=lab.coordinator) as client:
        before = info(client)
        assert client.device is not None
        client.device.reset("hard")
        client.reconnect()
        after = info(client)
    assert after["boot_id"] != before["boot_id"]
    assert after["boot_count"] == before["boot_count"] + 1
    assert after["reset_cause"] == "reset-pin"
    assert "PUT /reset 1" in lab.relay.requests


def test_rpc_reset_stays_the_devices_own(lab: Lab) -> None:
    with connect_place("host", lab.place, coordinator=lab.coordinator) as client:
        before = info(client)
        assert client.device is not None
        client.device.reset("rpc")
        client.reconnect()
        after = info(client)
    assert after["boot_count"] == before["boot_count"] + 1
    assert after["reset_cause"] == "software"


def test_place_is_released_when_the_run_is_interrupted(lab: Lab) -> None:
    with (
        pytest.raises(KeyboardInterrupt),
        connect_place("host", lab.place, coordinator=lab.coordinator) as client,
    ):
        assert client.call("rpc.add", 1, 1) == 2
        raise KeyboardInterrupt
    assert acquired_by(lab) == "None"


def test_place_taken_by_someone_else_is_a_clear_error(lab: Lab) -> None:
    labgrid_client(lab.coordinator, "-p", lab.place, "acquire", env=OTHER_USER)
    try:
        place = LabgridPlace(lab.place, coordinator=lab.coordinator, command_timeout=20)
        with pytest.raises(PlaceTakenError, match=lab.place) as caught:
            place.acquire()
        assert "someone-else" in str(caught.value)
        assert not place.acquired
    finally:
        labgrid_client(lab.coordinator, "-p", lab.place, "release", env=OTHER_USER)


def test_unknown_place_is_a_clear_error(lab: Lab) -> None:
    place = LabgridPlace("no-such-place", coordinator=lab.coordinator, command_timeout=20)
    with pytest.raises(UnknownPlaceError, match=r"no labgrid place 'no-such-place'.*places"):
        place.acquire()


def test_place_left_acquired_by_an_earlier_run_names_the_release_command(lab: Lab) -> None:
    labgrid_client(lab.coordinator, "-p", lab.place, "acquire")  # this user, this host
    try:
        place = LabgridPlace(lab.place, coordinator=lab.coordinator, command_timeout=20)
        with pytest.raises(PlaceTakenError, match=r"already held by this user.*release"):
            place.acquire()
    finally:
        labgrid_client(lab.coordinator, "-p", lab.place, "release")


def test_place_without_a_serial_port_is_a_clear_error() -> None:
    resources = parse_environment(
        "targets:\n  bare:\n    resources:\n    - NetworkPowerPort: {model: simplerest}\n",
        "bare",
    )
    place = LabgridPlace("bare")
    place._acquired, place._resources = True, resources  # what acquire() and env() would set
    with pytest.raises(PlaceResourceError, match=r"'bare' has no NetworkSerialPort.*add-match"):
        place.serial_url()
    with pytest.raises(PlaceResourceError, match=r"'hard' reset needs .*reset_kinds"):
        place.pulse_reset()


@needs_labgrid_client
def test_coordinator_that_refuses_is_a_clear_error() -> None:
    address = f"127.0.0.1:{free_port()}"
    place = LabgridPlace("any", coordinator=address, command_timeout=20)
    with pytest.raises(CoordinatorUnreachableError, match=address):
        place.acquire()


@needs_labgrid_client
def test_coordinator_that_never_answers_is_a_deadline_not_a_hang() -> None:
    # A listener that accepts connections but never speaks: a hung coordinator.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        place = LabgridPlace("any", coordinator=address, command_timeout=3)
        started = time.monotonic()
        with pytest.raises(
            (LabgridCommandTimeoutError, CoordinatorUnreachableError), match=address
        ):
            place.acquire()
        assert time.monotonic() - started < 10
