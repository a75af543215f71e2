"""The credential, device connection and command endpoints over HTTP: validation, secrets, tenancy."""

import uuid

import pytest
from django.db import connection as db
from django.test import Client

from netfleet.accounts.roles import Role
from netfleet.connections import services
from netfleet.connections.choices import CommandStatus
from netfleet.connections.models import Command, Credentials, DeviceConnection
from netfleet.controller import services as controller_services
from netfleet.controller.factories import make_device
from netfleet.controller.models import Device

from .helpers import CREDENTIALS, device_url, error_of, fields_of

pytestmark = pytest.mark.django_db

SECRET = "s3cret-Passw0rd!"
PRIVATE_KEY = """-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACBDxUDlfWXcyqlTs2lvyZVMaGcF2MsvqnT8/8ToFnBjjwAAAJg2J2LDNidi
wwAAAAtzc2gtZWQyNTUxOQAAACBDxUDlfWXcyqlTs2lvyZVMaGcF2MsvqnT8/8ToFnBjjw
AAAEBRN/3Z5h6zTJxKXFXJjXYUCXGcyvZl2lsa1W09O6lt0kPFQOV9ZdzKqVOzaW/JlUxo
ZwXYyy+qdPz/xOgWcGOPAAAAEHRlc3RAbmV0ZmxlZXQtY2kBAgMEBQY=
-----END OPENSSH PRIVATE KEY-----
"""


def credential_payload(organization, **extra):
    params = {"username": "root", "password": SECRET, "port": 22, **extra.pop("params", {})}
    return {"name": "routers", "organization": str(organization.pk), "connector": "ssh", "params": params, **extra}


@pytest.fixture
def site_admin(client_as):
    return client_as(Role.SITE_ADMIN)[0]


@pytest.fixture
def operator(client_as):
    return client_as(Role.OPERATOR)[0]


class TestCredentials:
    def test_create_hides_secrets_and_encrypts_them(self, site_admin, organization):
        response = site_admin.post(CREDENTIALS, credential_payload(organization, params={"key": PRIVATE_KEY}))
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["params"] == {"username": "root", "port": 22}
        assert body["has_password"] is True and body["has_private_key"] is True
        assert SECRET not in response.content.decode() and "PRIVATE KEY" not in response.content.decode()
        listed = (
            site_admin.get(CREDENTIALS).content.decode()
            + site_admin.get(f"{CREDENTIALS}{body['id']}/").content.decode()
        )
        assert SECRET not in listed and "PRIVATE KEY" not in listed
        with db.cursor() as cursor:
            cursor.execute(
                "SELECT password, private_key, params FROM connections_credentials WHERE id = %s", [body["id"]]
            )
            raw_password, raw_key, raw_params = cursor.fetchone()
        assert SECRET not in raw_password and "PRIVATE KEY" not in raw_key and SECRET not in str(raw_params)
        stored = Credentials.objects.get(pk=body["id"])
        assert stored.password == SECRET and stored.private_key == PRIVATE_KEY

    def test_patch_keeps_secrets_unless_given(self, site_admin, organization):
        created = site_admin.post(CREDENTIALS, credential_payload(organization)).json()
        response = site_admin.patch(f"{CREDENTIALS}{created['id']}/", {"params": {"username": "admin"}})
        assert response.status_code == 200, response.content
        assert Credentials.objects.get(pk=created["id"]).password == SECRET
        site_admin.patch(f"{CREDENTIALS}{created['id']}/", {"params": {"username": "admin", "password": "n3w-one"}})
        assert Credentials.objects.get(pk=created["id"]).password == "n3w-one"

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"username": ""}, "body.params.username"),
            ({"port": 70000}, "body.params.port"),
            ({"port": "22"}, "body.params.port"),
            ({"connect_timeout": 0}, "body.params.connect_timeout"),
            ({"colour": "blue"}, "body.params.colour"),
            ({"password": "", "key": "not a key"}, "body.params.key"),
            ({"password": 5}, "body.params.password"),
        ],
    )
    def test_bad_params_are_422(self, site_admin, organization, params, field):
        error = error_of(site_admin.post(CREDENTIALS, credential_payload(organization, params=params)), 422)
        assert field in fields_of(error)

    def test_secret_required_and_connector_known(self, site_admin, organization):
        payload = credential_payload(organization, connector="telnet", params={"password": ""})
        error = error_of(site_admin.post(CREDENTIALS, payload), 422)
        assert "body.connector" in fields_of(error)
        error = error_of(site_admin.post(CREDENTIALS, credential_payload(organization, params={"password": ""})), 422)
        assert "body.params.password" in fields_of(error)
        error = error_of(site_admin.post(CREDENTIALS, {**credential_payload(organization), "params": [1]}), 422)
        assert "body.params" in fields_of(error)

    def test_permissions_and_tenancy(self, client_as, site_admin, operator, organization, other_organization):
        viewer = client_as(Role.VIEWER)[0]
        error_of(viewer.get(CREDENTIALS), 403)
        error_of(operator.post(CREDENTIALS, credential_payload(organization)), 403)
        assert operator.get(CREDENTIALS).status_code == 200
        foreign = services.create_credentials(
            organization=other_organization, name="theirs", params={"username": "x"}, password="pw-123456"
        )
        error_of(site_admin.get(f"{CREDENTIALS}{foreign.pk}/"), 404)
        error_of(site_admin.delete(f"{CREDENTIALS}{foreign.pk}/"), 404)
        error = error_of(site_admin.post(CREDENTIALS, credential_payload(other_organization)), 422)
        assert "body.organization" in fields_of(error)
        assert [item["id"] for item in site_admin.get(CREDENTIALS).json()["results"]] == []

    def test_shared_credentials_are_for_superusers(self, site_admin, admin_client, organization):
        error_of(site_admin.post(CREDENTIALS, {**credential_payload(organization), "organization": None}), 403)
        response = admin_client.post(CREDENTIALS, {**credential_payload(organization), "organization": None})
        assert response.status_code == 201, response.content
        shared = response.json()["id"]
        assert shared in [item["id"] for item in site_admin.get(CREDENTIALS).json()["results"]]
        error_of(site_admin.patch(f"{CREDENTIALS}{shared}/", {"name": "mine"}), 403)

    def test_duplicate_name_is_409(self, site_admin, organization):
        site_admin.post(CREDENTIALS, credential_payload(organization))
        error_of(site_admin.post(CREDENTIALS, credential_payload(organization)), 409)


class TestAutoAdd:
    def test_attaches_to_existing_and_new_devices(self, site_admin, operator, organization, other_organization):
        existing = make_device(organization)
        foreign = make_device(other_organization)
        response = site_admin.post(CREDENTIALS, credential_payload(organization, auto_add=True))
        assert response.status_code == 201, response.content
        credentials_id = response.json()["id"]
        assert DeviceConnection.objects.filter(device=existing, credentials_id=credentials_id).exists()
        assert not DeviceConnection.objects.filter(device=foreign).exists()
        # a device created later (through the API, as through the agent) gets a connection too
        created = operator.post(
            "/api/v1/controller/device/",
            {"name": "edge-new", "organization": str(organization.pk), "mac_address": "52:54:00:aa:bb:01"},
        )
        assert created.status_code == 201, created.content
        device_id = created.json()["id"]
        listed = operator.get(f"/api/v1/controller/device/{device_id}/connection/").json()["results"]
        assert [item["credentials"] for item in listed] == [credentials_id]
        assert listed[0]["update_strategy"] == "openwrt-ssh" and listed[0]["is_working"] is None
        assert DeviceConnection.objects.filter(device=make_device(organization)).count() == 1

    def test_devices_registered_by_their_agent_get_them(self, admin_client, organization, other_organization):
        fields = {"params": {"username": "root"}, "password": "pw-123456", "auto_add": True}
        own = services.create_credentials(organization=organization, name="own", **fields)
        services.create_credentials(organization=other_organization, name="theirs", **fields)
        shared_payload = {**credential_payload(organization, auto_add=True), "organization": None}
        response = admin_client.post(CREDENTIALS, shared_payload)
        assert response.status_code == 201, response.content
        shared = response.json()["id"]
        secret = controller_services.organization_settings(organization).shared_secret
        data = {"secret": secret, "name": "ap-new", "mac_address": "52:54:00:aa:bb:02"}
        data["backend"] = "netjsonconfig.OpenWrt"
        registered = Client().post("/controller/device/register/", data)
        assert registered.status_code == 201, registered.content
        device = Device.objects.get(mac_address="52:54:00:AA:BB:02")
        attached = DeviceConnection.objects.filter(device=device).values_list("credentials_id", flat=True)
        assert sorted(map(str, attached)) == sorted([str(own.pk), shared])

    def test_without_auto_add_nothing_is_attached(self, site_admin, organization):
        device = make_device(organization)
        site_admin.post(CREDENTIALS, credential_payload(organization))
        assert not DeviceConnection.objects.filter(device=device).exists()


@pytest.fixture
def credentials(organization):
    return services.create_credentials(
        organization=organization, name="lab", params={"username": "root"}, password="pw-123456"
    )


class TestDeviceConnections:
    def test_crud(self, operator, organization, credentials):
        device = make_device(organization)
        response = operator.post(device_url(device, "connection"), {"credentials": str(credentials.pk)})
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["device"] == str(device.pk) and body["enabled"] is True and body["is_working"] is None
        assert set(body) >= {"update_strategy", "failure_reason", "last_attempt", "host_key"}
        url = device_url(device, "connection", body["id"])
        patched = operator.patch(url, {"enabled": False, "update_strategy": "linux-ssh"}).json()
        assert (patched["enabled"], patched["update_strategy"]) == (False, "linux-ssh")
        error_of(operator.patch(url, {"update_strategy": "carrier-pigeon"}), 422)
        error_of(operator.patch(url, {"is_working": True, "host_key": "garbage"}), 422)
        assert operator.get(device_url(device, "connection")).json()["count"] == 1
        assert operator.delete(url).status_code == 204
        assert not DeviceConnection.objects.exists()

    def test_duplicate_and_foreign_credentials(self, operator, organization, other_organization, credentials):
        device = make_device(organization)
        operator.post(device_url(device, "connection"), {"credentials": str(credentials.pk)})
        error_of(operator.post(device_url(device, "connection"), {"credentials": str(credentials.pk)}), 409)
        theirs = services.create_credentials(
            organization=other_organization, name="theirs", params={"username": "x"}, password="pw-123456"
        )
        error = error_of(operator.post(device_url(device, "connection"), {"credentials": str(theirs.pk)}), 422)
        assert "body.credentials" in fields_of(error)

    def test_tenancy_and_roles(self, client_as, operator, other_organization, organization, credentials):
        foreign = make_device(other_organization)
        error_of(operator.get(device_url(foreign, "connection")), 404)
        error_of(operator.post(device_url(foreign, "connection"), {"credentials": str(credentials.pk)}), 404)
        error_of(operator.get("/api/v1/controller/device/not-a-uuid/connection/"), 404)
        error_of(operator.get(f"/api/v1/controller/device/{uuid.uuid4()}/command/"), 404)
        device = make_device(organization)
        viewer = client_as(Role.VIEWER)[0]
        assert viewer.get(device_url(device, "connection")).status_code == 200
        error_of(viewer.post(device_url(device, "connection"), {"credentials": str(credentials.pk)}), 403)


class TestCommands:
    def test_create_queues_a_command(self, client_as, organization, credentials):
        client, user = client_as(Role.OPERATOR)
        device = make_device(organization)
        connection = DeviceConnection.objects.create(device=device, credentials=credentials)
        response = client.post(device_url(device, "command"), {"type": "custom", "input": {"command": "uptime"}})
        assert response.status_code == 202, response.content
        body = response.json()
        assert body["status"] == CommandStatus.IN_PROGRESS and body["input"] == {"command": "uptime"}
        assert body["connection"] == str(connection.pk) and body["requested_by"] == str(user.pk)
        assert body["output"] == "" and body["exit_code"] is None
        assert client.get(device_url(device, "command", body["id"])).json()["id"] == body["id"]

    def test_list_newest_first(self, operator, organization, credentials, make_user):
        device = make_device(organization)
        DeviceConnection.objects.create(device=device, credentials=credentials)
        user = make_user()
        ids = [
            str(
                services.run_command(device=device, type="custom", input={"command": f"echo {n}"}, requested_by=user).pk
            )
            for n in range(3)
        ]
        body = operator.get(device_url(device, "command")).json()
        assert [item["id"] for item in body["results"]] == ids[::-1]
        assert operator.get(device_url(device, "command") + "?status=success").json()["count"] == 0

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"type": "custom", "input": {}}, "body.input.command"),
            ({"type": "custom", "input": {"command": ""}}, "body.input.command"),
            ({"type": "custom", "input": "uptime"}, "body.input"),
            ({"type": "custom", "input": {"command": "x", "sudo": True}}, "body.input.sudo"),
            ({"type": "launch-missiles"}, "body.type"),
            ({"input": {"command": "x"}}, "body.type"),
            ({"type": "change_password", "input": {"password": "abcdefgh", "confirm_password": "abcdefgi"}},
             "body.input.confirm_password"),
            ({"type": "change_password", "input": {"password": "abc", "confirm_password": "abc"}},
             "body.input.password"),
            ({"type": "reboot", "connection": "not-a-uuid"}, "body.connection"),
        ],
    )  # fmt: skip
    def test_bad_input_is_422(self, operator, organization, credentials, payload, field):
        device = make_device(organization)
        DeviceConnection.objects.create(device=device, credentials=credentials)
        error = error_of(operator.post(device_url(device, "command"), payload), 422)
        assert field in fields_of(error)
        assert not Command.objects.exists()

    def test_secret_input_is_never_shown(self, operator, organization, credentials):
        device = make_device(organization)
        DeviceConnection.objects.create(device=device, credentials=credentials)
        payload = {"type": "change_password", "input": {"password": "n3w-Secret!", "confirm_password": "n3w-Secret!"}}
        response = operator.post(device_url(device, "command"), payload)
        assert response.status_code == 202, response.content
        assert "n3w-Secret!" not in response.content.decode() and response.json()["input"] == {}
        assert "n3w-Secret!" not in operator.get(device_url(device, "command")).content.decode()
        with db.cursor() as cursor:
            cursor.execute("SELECT input::text, secret_input FROM connections_command")
            raw_input, raw_secret = cursor.fetchone()
        assert "n3w-Secret!" not in raw_input + raw_secret

    def test_needs_a_usable_connection(self, operator, organization, credentials):
        device = make_device(organization)
        error = error_of(operator.post(device_url(device, "command"), {"type": "reboot"}), 409)
        assert "connection" in error["message"]
        DeviceConnection.objects.create(device=device, credentials=credentials, is_working=False)
        error_of(operator.post(device_url(device, "command"), {"type": "reboot"}), 409)
        other = make_device(organization)
        theirs = DeviceConnection.objects.create(device=other, credentials=credentials)
        payload = {"type": "reboot", "connection": str(theirs.pk)}
        assert "body.connection" in fields_of(error_of(operator.post(device_url(device, "command"), payload), 422))

    def test_roles_and_tenancy(self, client_as, operator, organization, other_organization, credentials):
        device = make_device(organization)
        DeviceConnection.objects.create(device=device, credentials=credentials)
        viewer = client_as(Role.VIEWER)[0]
        error_of(viewer.post(device_url(device, "command"), {"type": "reboot"}), 403)
        assert viewer.get(device_url(device, "command")).status_code == 200
        foreign = make_device(other_organization)
        error_of(operator.post(device_url(foreign, "command"), {"type": "reboot"}), 404)
        command = services.run_command(device=device, type="reboot", input={}, requested_by=None)
        error_of(operator.get(device_url(foreign, "command", command.pk)), 404)
        error_of(operator.get(device_url(device, "command", uuid.uuid4())), 404)
