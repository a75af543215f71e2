"""The controller's REST API over real HTTP against `netfleet serve` (the embedded SQLite database), as an
operator's client uses it: every device filter, template assignment and ordering, required templates, tenancy,
roles, and the rendered configuration with its checksums. The agent's side is test_agent_live."""

import hashlib
import io
import tarfile
from types import SimpleNamespace

import httpx
import pytest

from netfleet.testing.live import EmbeddedInstance

pytestmark = pytest.mark.live

PASSWORD = "live-test-Password-1"
USERS = f"""
from netfleet.accounts.models import Membership, Organization, User
org = Organization.objects.get(slug="default")
other = Organization.objects.create(name="Other", slug="other")
members = [("viewer", org, "viewer"), ("operator", org, "operator"), ("outsider", other, "org_admin")]
for name, organization, role in members:
    user = User.objects.create_user(username=name, email=f"{{name}}@example.com", password="{PASSWORD}")
    Membership.objects.create(user=user, organization=organization, role=role)
print(org.pk, other.pk)
"""
WIFI = {
    "interfaces": [
        {
            "name": "wlan0",
            "type": "wireless",
            "wireless": {"radio": "radio0", "mode": "access_point", "ssid": "{{ ssid }}"},
        }
    ]
}
LAN = {"interfaces": [{"name": "lan", "type": "bridge", "bridge_members": ["eth0"], "mtu": 1500}]}


def logged_in(instance, username, password):
    token = httpx.post(f"{instance.base_url}/api/v1/auth/login", json={"login": username, "password": password})
    assert token.status_code == 200, token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    return httpx.Client(base_url=f"{instance.base_url}/api/v1/controller", headers=headers, timeout=30)


@pytest.fixture(scope="module")
def api():
    # one HTTP worker: a change made through the API reaches the agent answers it caches at once
    instance = EmbeddedInstance(serve_args=["--no-celery"], extra_env={"NETFLEET_RATELIMIT_AUTH": "off"}).start()
    try:  # a failing set-up must not leave the server running
        org, other = instance.manage("shell", "-c", USERS).stdout.strip().splitlines()[-1].split()
        clients = {name: logged_in(instance, name, PASSWORD) for name in ("viewer", "operator", "outsider")}
        admin = logged_in(instance, "admin", instance.admin_password)
        yield SimpleNamespace(instance=instance, org=org, other=other, admin=admin, **clients)
    finally:
        instance.stop()


def created(response):
    assert response.status_code == 201, response.text
    return response.json()


def ids(client, **params):
    response = client.get("/device/", params={"page_size": 1000, **params})
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["results"]}


def rejected(client, **params):
    response = client.get("/device/", params=params)
    assert response.status_code == 422, response.text
    return {detail["field"] for detail in response.json()["error"]["details"]}


def checksum(api, device):
    url = f"{api.instance.base_url}/controller/device/checksum/{device['id']}/"
    answer = httpx.get(url, params={"key": device["key"]})
    assert answer.status_code == 200 and len(answer.text) == 32, answer.text
    return answer.text


def files_of(archive):
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {member.name: tar.extractfile(member).read().decode() for member in tar.getmembers() if member.isfile()}


def test_every_device_filter(api):
    lan = created(api.admin.post("/template/", json={"name": "lan", "organization": api.org, "config": LAN}))
    group = created(api.admin.post("/group/", json={"name": "aps", "organization": api.org}))
    device = {"organization": api.org, "config": {"templates": [lan["id"]]}, "group": group["id"]}
    in_group = created(
        api.operator.post("/device/", json={**device, "name": "f-1", "mac_address": "02:00:0f:00:00:01"})
    )
    openwisp = {"organization": api.org, "config": {"backend": "netjsonconfig.OpenWisp"}}
    plain = created(api.operator.post("/device/", json={**openwisp, "name": "f-2", "mac_address": "02:00:0f:00:00:02"}))
    theirs = {"organization": api.other, "name": "f-3", "mac_address": "02:00:0f:00:00:03"}
    foreign = created(api.admin.post("/device/", json=theirs))
    # the agent reports its configuration applied
    report = f"{api.instance.base_url}/controller/device/report-status/{plain['id']}/"
    assert httpx.post(report, data={"key": plain["key"], "status": "applied"}).status_code == 200

    mine, everything = {in_group["id"], plain["id"]}, {in_group["id"], plain["id"], foreign["id"]}
    assert ids(api.admin) >= everything
    assert ids(api.admin, config__status="applied") & everything == {plain["id"]}
    assert ids(api.admin, config__status="error") & everything == set()
    assert ids(api.admin, config__backend="netjsonconfig.OpenWisp") & everything == {plain["id"]}
    assert ids(api.admin, config__backend="netjsonconfig.OpenWrt") & everything == {in_group["id"], foreign["id"]}
    assert ids(api.admin, organization=api.other) == {foreign["id"]}
    assert ids(api.admin, organization_slug="other") == {foreign["id"]}
    assert ids(api.admin, organization_slug="no-such-org") == set()
    assert ids(api.admin, config__templates=lan["id"]) == {in_group["id"]}
    assert ids(api.admin, group=group["id"]) == {in_group["id"]}
    assert ids(api.admin, with_geo="true") & everything == set()  # none has a location
    assert ids(api.admin, with_geo="false") >= everything
    assert ids(api.admin, created=plain["created"]) == {plain["id"]}
    assert ids(api.admin, created__gte=plain["created"]) & everything == {plain["id"], foreign["id"]}
    assert ids(api.admin, created__lt=plain["created"]) & everything == {in_group["id"]}
    assert ids(api.operator) & everything == mine  # another organization's devices do not exist for the operator
    bad = {
        "config__status": "broken", "config__backend": "cisco", "organization": "acme", "config__templates": "x",
        "group": "lobby", "created": "last tuesday", "created__gte": "soon", "created__lt": "soon",
    }  # fmt: skip
    for name, value in bad.items():
        assert rejected(api.admin, **{name: value}) == {f"query.{name}"}


def test_templates_assigned_reordered_removed_and_required_kept(api):
    first = created(api.admin.post("/template/", json={"name": "t-1", "organization": api.org, "config": LAN}))
    second = created(
        api.admin.post(
            "/template/",
            json={"name": "t-2", "organization": api.org, "config": WIFI, "default_values": {"ssid": "lobby"}},
        )
    )
    device = created(
        api.operator.post(
            "/device/", json={"name": "t-dev", "organization": api.org, "mac_address": "02:00:0e:00:00:01"}
        )
    )
    url = f"/device/{device['id']}/"

    def assign(*templates):
        return api.operator.patch(url, json={"config": {"templates": [t["id"] for t in templates]}})

    assert assign(first, second).json()["config"]["templates"] == [first["id"], second["id"]]  # assign
    assert assign(second, first).json()["config"]["templates"] == [second["id"], first["id"]]  # reorder
    assert assign().json()["config"]["templates"] == []  # remove
    required = {"name": "t-req", "organization": api.org, "config": {}, "required": True}
    required = created(api.admin.post("/template/", json=required))
    assert api.viewer.get(url).json()["config"]["templates"] == [required["id"]]  # it joined the existing device
    refused = assign(first)
    assert refused.status_code == 422
    assert "Required templates cannot be removed" in str(refused.json()["error"]["details"])
    assert api.viewer.get(url).json()["config"]["templates"] == [required["id"]]
    assert assign(first, required).json()["config"]["templates"] == [first["id"], required["id"]]  # moved is fine


def test_another_organization_is_404_and_a_viewer_only_reads(api):
    device = created(
        api.operator.post("/device/", json={"name": "r-1", "organization": api.org, "mac_address": "02:00:0d:00:00:01"})
    )
    url = f"/device/{device['id']}/"
    for response in (
        api.outsider.get(url),
        api.outsider.patch(url, json={"name": "taken"}),
        api.outsider.delete(url, params={"force": "true"}),
        api.outsider.get(f"{url}configuration/"),
        api.outsider.post(f"{url}deactivate/"),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == 404
    assert api.viewer.get(url).json()["name"] == "r-1"
    assert api.viewer.get("/device/").status_code == 200
    for response in (
        api.viewer.patch(url, json={"name": "renamed"}),
        api.viewer.post("/device/", json={"name": "r-2", "organization": api.org, "mac_address": "02:00:0d:00:00:02"}),
        api.viewer.delete(url, params={"force": "true"}),
    ):
        assert response.status_code == 403, response.text
    assert api.admin.get(url).json()["name"] == "r-1"


def test_rendered_configuration_and_checksums(api):
    wifi = {"name": "g-wifi", "organization": api.org, "config": WIFI, "default_values": {"ssid": "default-ssid"}}
    wifi = created(api.admin.post("/template/", json=wifi))
    lan = created(api.admin.post("/template/", json={"name": "g-lan", "organization": api.org, "config": LAN}))
    other = created(api.admin.post("/template/", json={"name": "g-other", "organization": api.org, "config": {}}))
    config = {
        "templates": [wifi["id"], lan["id"]],
        "context": {"ssid": "device-ssid"},
        "config": {"general": {"hostname": "{{ name }}"}},
    }
    device = created(
        api.operator.post(
            "/device/",
            json={"name": "ap-7", "organization": api.org, "mac_address": "02:00:0c:00:00:01", "config": config},
        )
    )
    untouched = {
        "name": "ap-8",
        "organization": api.org,
        "mac_address": "02:00:0c:00:00:02",
        "config": {"templates": [other["id"]]},
    }
    untouched = created(api.operator.post("/device/", json=untouched))

    download = api.viewer.get(f"/device/{device['id']}/configuration/")
    assert download.status_code == 200 and download.headers["content-type"] == "application/gzip"
    files = files_of(download.content)
    assert "option hostname 'ap-7'" in files["etc/config/system"]
    assert "option ssid 'device-ssid'" in files["etc/config/wireless"]  # the device's variable beats the default
    assert "config interface 'lan'" in files["etc/config/network"]
    assert "option mtu '1500'" in files["etc/config/network"]
    # deterministic: the same bytes again, and the agent's checksum is their md5
    assert api.viewer.get(f"/device/{device['id']}/configuration/").content == download.content
    before = {d["id"]: checksum(api, d) for d in (device, untouched)}
    assert before == {d["id"]: checksum(api, d) for d in (device, untouched)}
    assert before[device["id"]] == hashlib.md5(download.content, usedforsecurity=False).hexdigest()

    changed = {"config": {"interfaces": [{"name": "lan", "type": "bridge", "bridge_members": ["eth0"], "mtu": 9000}]}}
    assert api.admin.patch(f"/template/{lan['id']}/", json=changed).status_code == 200
    assert checksum(api, device) != before[device["id"]]  # only the device using the template changed
    assert checksum(api, untouched) == before[untouched["id"]]
    assert api.viewer.get(f"/device/{device['id']}/").json()["config"]["status"] == "modified"
    network = files_of(api.viewer.get(f"/device/{device['id']}/configuration/").content)["etc/config/network"]
    assert "option mtu '9000'" in network
