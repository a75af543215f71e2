"""The agent protocol against a real `netfleet serve`, with curl invoked exactly as openwisp-config does."""

import hashlib
import subprocess
import time

import httpx
import pytest

from netfleet.testing.live import EmbeddedInstance

pytestmark = pytest.mark.live

MAC = "52:54:00:12:34:56"
SHELL_PRELUDE = (
    "from netfleet.accounts.models import Organization; from netfleet.controller import services; "
    "from netfleet.controller.models import Config, Template; org = Organization.objects.get(slug='default'); "
)


@pytest.fixture(scope="module")
def instance():
    # the embedded cache is per process: a change made elsewhere (here: a shell) reaches the HTTP workers when
    # their short-lived agent answers expire, which this test shortens to 2 s
    embedded = EmbeddedInstance(
        serve_args=["--no-celery"], extra_env={"NETFLEET_CONTROLLER_AGENT_CACHE_SECONDS": "2"}
    ).start()
    yield embedded
    embedded.stop()


def shell(instance, code):
    return instance.manage("shell", "--verbosity", "0", "-c", SHELL_PRELUDE + code).stdout.strip()


def curl(*args):
    """curl as the agent runs it: silent, with its timeouts; -i keeps the headers in the output."""
    result = subprocess.run(
        ["curl", "-s", "--connect-timeout", "15", "--max-time", "30", *args], capture_output=True, check=True
    )
    return result.stdout


def test_agent_lifecycle(instance, tmp_path):
    secret = shell(instance, "print(services.organization_settings(org).shared_secret)")
    shell(
        instance,
        "Template.objects.create(organization=org, name='lan', default=True, "
        "config={'interfaces': [{'name': 'eth0', 'type': 'ethernet'}]})",
    )
    url = f"{instance.base_url}/controller"
    key = hashlib.md5(f"{MAC}+{secret}".encode(), usedforsecurity=False).hexdigest()
    # register(): --data for the plain params, --data-urlencode for the rest, -i to check header and status
    raw = curl(
        "--data", f"backend=netjsonconfig.OpenWrt&key={key}",
        "--data-urlencode", f"secret={secret}",
        "--data-urlencode", "name=edge-01",
        "--data-urlencode", "hardware_id=",
        "--data-urlencode", f"mac_address={MAC}",
        "--data-urlencode", "tags=",
        "--data-urlencode", "model=QEMU Standard PC",
        "--data-urlencode", "os=OpenWrt 23.05.3",
        "--data-urlencode", "system=x86_64",
        "-i", f"{url}/register/",
    ).decode()  # fmt: skip
    head, _, body = raw.partition("\r\n\r\n")
    assert head.splitlines()[0].split()[1] == "201", raw
    assert "x-openwisp-controller: true" in head.lower()
    fields = dict(line.split(": ", 1) for line in body.splitlines())
    uuid, returned_key = fields["uuid"], fields["key"]
    assert returned_key == key and fields["is-new"] == "1" and fields["hostname"] == "edge-01"

    # configuration_changed(): `curl -i`, status line 200, header present, checksum = last line
    checksum_url = f"{url}/checksum/{uuid}/?key={key}"
    reply = curl("-i", checksum_url).decode()
    assert reply.splitlines()[0].split()[1] == "200" and "x-openwisp-controller: true" in reply.lower()
    remote_checksum = reply.splitlines()[-1]
    # download_configuration(): --fail -o, then md5sum must equal the remote checksum
    archive_path = tmp_path / "configuration.tar.gz"
    curl("--fail", f"{url}/download-config/{uuid}/?key={key}", "-o", str(archive_path))
    md5sum = subprocess.run(["md5sum", str(archive_path)], capture_output=True, text=True, check=True)
    assert md5sum.stdout.split()[0] == remote_checksum
    listing = subprocess.run(["tar", "-ztf", str(archive_path)], capture_output=True, text=True, check=True)
    assert "etc/config/network" in listing.stdout.split()
    # report_status("applied") and update_info()
    report = curl("-i", "--data", f"key={key}&status=applied", "--data-urlencode", "", f"{url}/report-status/{uuid}/")
    assert b"report-result: success" in report and b"200" in report.splitlines()[0]
    info = curl("-i", "--data", f"key={key}", "--data-urlencode", "model=QEMU", f"{url}/update-info/{uuid}/")
    assert b"update-info: success" in info
    assert shell(instance, f"print(Config.objects.get(device_id='{uuid}').status)") == "applied"

    # a template change: a new checksum for the agent, status modified
    shell(
        instance,
        "t = Template.objects.get(name='lan'); "
        "t.config = {'interfaces': [{'name': 'eth0', 'type': 'ethernet', 'mtu': 1400}]}; t.save(); "
        "services.refresh_affected(config_ids=services.configs_using_template(t))",
    )
    deadline = time.monotonic() + 10
    while curl("-i", checksum_url).decode().splitlines()[-1] == remote_checksum and time.monotonic() < deadline:
        time.sleep(0.5)  # the agent polls every 2 minutes; the new checksum is there within the cache lifetime
    assert curl("-i", checksum_url).decode().splitlines()[-1] != remote_checksum
    assert shell(instance, f"print(Config.objects.get(device_id='{uuid}').status)") == "modified"


LIST_FIXTURE = (
    "from datetime import datetime, UTC; from netfleet.accounts.models import Site; "
    "from netfleet.controller.models import Device, DeviceGroup; "
    "site = Site.objects.create(organization=org, name='roof'); "
    "group = DeviceGroup.objects.create(organization=org, name='aps'); "
    "first = Template.objects.create(organization=org, name='first', config={'general': {}}); "
    "second = Template.objects.create(organization=org, name='second', config={'general': {}}); "
    "a = services.create_device(organization=org, name='list-a', mac_address='02:00:00:00:0a:01', site=site, "
    "group=group, management_ip='10.0.0.1', notes='\"quoted\" \\\\ \u00fcn\u00efcode', templates=[second, first]); "
    "b = services.create_device(organization=org, name='list-b', mac_address='02:00:00:00:0a:02'); "
    "Config.objects.filter(device=b).update(context={'ssid': 'lobby', 'n': 1.5}); "
    "Device.objects.filter(pk=b.pk).update(is_deactivated=True, last_ip='192.0.2.7', "
    "created=datetime(2026, 11, 22, 6, 29, 21, tzinfo=UTC)); "
    "print(first.pk, second.pk)"
)


def test_device_list_items_written_by_sqlite(instance):
    """The device list's items are written by the database (on SQLite here, the tests' PostgreSQL elsewhere):
    each is what the device's own detail answers, on both of the list's statement shapes."""
    first, second = shell(instance, LIST_FIXTURE).split()
    login = {"login": "admin", "password": instance.admin_password}
    token = httpx.post(f"{instance.base_url}/api/v1/auth/login", json=login).json()["access_token"]
    api = httpx.Client(base_url=f"{instance.base_url}/api/v1/controller", headers={"Authorization": f"Bearer {token}"})
    listed = api.get("/device/", params={"page_size": 1000}).json()["results"]
    by_name = {item["name"]: item for item in listed}
    for item in listed:
        assert item == api.get(f"/device/{item['id']}/").json()
    assert by_name["list-a"]["config"]["templates"] == [second, first]
    assert by_name["list-b"]["created"] == "2026-11-22T06:29:21Z" and by_name["list-b"]["is_deactivated"] is True
    # filtering by template makes the ORM's SQL another shape (DISTINCT): read as ids, then items
    assert api.get("/device/", params={"config__templates": first}).json()["results"] == [by_name["list-a"]]
