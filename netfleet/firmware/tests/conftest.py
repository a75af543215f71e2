"""Firmware fixtures: media in the test's own directory, clients by role, devices with a connection."""

import shutil
from pathlib import Path

import pytest

from netfleet.accounts.roles import Role
from netfleet.connections import services as connection_services
from netfleet.connections.models import DeviceConnection
from netfleet.controller.factories import make_device
from netfleet.firmware.factories import ARCHER_C7_V5_MODEL


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "data" / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def writer(client_as):
    """A network admin of `organization` (holds firmware:write)."""
    return client_as(Role.NETWORK_ADMIN)[0]


@pytest.fixture
def viewer(client_as):
    return client_as(Role.VIEWER)[0]


@pytest.fixture
def connected_device(organization):
    """connected_device(organization=None, model=..., **fields) -> a device with an SSH connection (never used
    by the API tests: their transactions never commit, so no upgrade is queued)."""
    credentials = {}

    def make(org=None, model=ARCHER_C7_V5_MODEL, **fields):
        org = org or organization
        if org.pk not in credentials:
            credentials[org.pk] = connection_services.create_credentials(
                organization=org, name="lab", params={"username": "root", "port": 22}, password="secret-pw"
            )
        device = make_device(org, model=model, management_ip="127.0.0.1", **fields)
        DeviceConnection.objects.create(device=device, credentials=credentials[org.pk])
        return device

    return make


@pytest.fixture
def make_sshd(sshd):
    """make_sshd() -> another real sshd (a device of its own, which a test may stop and restart)."""
    from netfleet.testing.sshd import SshServer

    servers = []

    def make():
        server = SshServer().start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
        shutil.rmtree(server.home / f"netfleet-fw-state-{server.port}", ignore_errors=True)


@pytest.fixture
def upgrader_settings(settings, sshd):
    """Point the OpenWrt upgrader at the sysupgrade stand-in of the sshd host, with short reboot timings."""
    from .devices import firmware_settings

    values = firmware_settings(sshd)
    for name, value in values.items():
        setattr(settings, name, value)
    yield settings
    for directory in (
        Path(values["NETFLEET_FIRMWARE_OPENWRT_UPGRADE_COMMAND"]).parent,
        Path(values["NETFLEET_FIRMWARE_OPENWRT_UPLOAD_DIR"]),
        sshd.home / f"netfleet-fw-state-{sshd.port}",
    ):
        shutil.rmtree(directory, ignore_errors=True)
