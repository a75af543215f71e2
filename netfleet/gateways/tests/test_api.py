"""routers-api.txt over HTTP: the /routers/ face and /api/v1/routers/, against the RouterOS simulator."""

import pytest
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from netfleet.accounts import services
from netfleet.accounts.factories import TEST_PASSWORD, SiteFactory
from netfleet.accounts.roles import Role
from netfleet.gateways.models import Gateway

pytestmark = pytest.mark.django_db

ROUTERS = "/routers/"
V1 = "/api/v1/routers/"
ROUTER_FIELDS = {
    "id", "name", "host", "port", "username", "use_https", "is_online", "last_checked", "created_at", "updated_at",
}  # fmt: skip


@pytest.fixture
def admin(client_as):
    client, _ = client_as(Role.NETWORK_ADMIN)
    return client


@pytest.fixture
def router(make_gateway, routeros_simulator):
    return make_gateway(routeros_simulator)


def error_of(response, code):
    assert response.status_code == code, response.content
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    return body["error"]


def run(client, router, **command):
    return client.post(f"{ROUTERS}{router.pk}/execute-command/", command, format="json")


class TestSpecExamples:
    def test_login_then_create_update_list_delete(self, make_user, organization):
        user = make_user(role=Role.NETWORK_ADMIN, organization=organization)
        client = APIClient()
        login = client.post("/users/login/", {"username": user.username, "password": TEST_PASSWORD}, format="json")
        assert login.status_code == 200, login.content
        client = APIClient()  # like curl: the Bearer token only, not the login's cookies
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {login.json()['access']}")

        # Create a Router (curl and Python): no port -> 80
        data = {"name": "Home Router", "host": "192.168.1.1", "username": "admin", "password": "password123"}
        created = client.post(ROUTERS, data, format="json")
        assert created.status_code == 201, created.content
        body = created.json()
        assert set(body) == ROUTER_FIELDS
        assert body["port"] == 80 and body["use_https"] is False and body["is_online"] is False
        assert body["last_checked"] is None and isinstance(body["id"], int)
        router_id = body["id"]

        # Update Router Details: PUT with only name, port and use_https keeps the rest
        put = client.put(
            f"{ROUTERS}{router_id}/", {"name": "Updated Router Name", "port": 443, "use_https": True}, format="json"
        )
        assert put.status_code == 200, put.content
        assert set(put.json()) == ROUTER_FIELDS
        assert put.json() | {"updated_at": None, "created_at": None} == {
            "id": router_id, "name": "Updated Router Name", "host": "192.168.1.1", "port": 443,
            "username": "admin", "use_https": True, "is_online": False, "last_checked": None,
            "created_at": None, "updated_at": None,
        }  # fmt: skip
        # the documented full PUT body, password included
        full = {"name": "Updated Router Name", "host": "192.168.1.10", "port": 443, "username": "admin",
                "password": "new_password", "use_https": True}  # fmt: skip
        assert client.put(f"{ROUTERS}{router_id}/", full, format="json").json()["host"] == "192.168.1.10"
        assert Gateway.objects.get(pk=router_id).password == "new_password"

        # List Routers: a bare list (`len(routers)`)
        routers = client.get(ROUTERS).json()
        assert isinstance(routers, list) and len(routers) == 1 and set(routers[0]) == ROUTER_FIELDS

        # Delete Router
        deleted = client.delete(f"{ROUTERS}{router_id}/")
        assert deleted.status_code == 200
        assert deleted.json() == {"message": 'Router "Updated Router Name" has been successfully deleted'}
        error_of(client.get(f"{ROUTERS}{router_id}/"), 404)

    def test_documented_create_body_with_port_and_https(self, admin):
        data = {"name": "Office Router", "host": "192.168.1.1", "port": 80, "username": "admin",
                "password": "your_password", "use_https": False}  # fmt: skip
        body = admin.post(ROUTERS, data, format="json").json()
        assert {k: body[k] for k in ("name", "host", "port", "username", "use_https")} == {
            k: v for k, v in data.items() if k != "password"
        }

    def test_api_key_login_works_too(self, make_user, organization, router):
        user = make_user(role=Role.NETWORK_ADMIN, organization=organization)
        _, full_key = services.create_api_key(user=user, name="routers", permissions=["device:read"])
        public, private = full_key.split(".", 1)
        login = APIClient().post("/users/api-key-login/", {"public_key": public, "private_key": private}, format="json")
        assert login.status_code == 200, login.content
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {login.json()['access']}")
        assert [r["id"] for r in client.get(ROUTERS).json()] == [router.pk]

    def test_test_connection(self, admin, router):
        response = admin.post(f"{ROUTERS}{router.pk}/test-connection/")
        assert response.status_code == 200
        assert response.json() == {"router_id": router.pk, "is_online": True, "message": "Connection test completed"}
        router.refresh_from_db()
        assert router.is_online and router.last_checked is not None
        assert admin.get(f"{ROUTERS}{router.pk}/").json()["is_online"] is True

    def test_device_info(self, admin, router):
        response = admin.get(f"{ROUTERS}{router.pk}/device-info/")
        assert response.status_code == 200, response.content
        assert response.json() == {
            "router_id": router.pk,
            "device_info": {
                "identity": "MikroTik",
                "cpu_load": "5%",
                "free_memory": "52428800",
                "total_memory": "134217728",
                "free_hdd_space": "1073741824",
                "total_hdd_space": "2147483648",
                "version": "7.14.3",
                "uptime": "2d 15:30:45",
            },  # fmt: skip
            "message": "Device information retrieved successfully",
        }

    def test_execute_command_examples(self, admin, router, routeros_simulator):
        add = run(admin, router, command="ip/hotspot/add", method="POST",
                  data={"name": "hotspot1", "address-pool": "pool1", "profile": "default"})  # fmt: skip
        assert add.status_code == 200, add.content
        assert add.json() == {"router_id": router.pk, "command": "ip/hotspot/add", "method": "POST",
                              "result": {"ret": "*1"}, "message": "Command executed successfully"}  # fmt: skip
        assert routeros_simulator.find("ip/hotspot", name="hotspot1")

        listed = run(admin, router, command="ip/hotspot", method="GET")
        assert listed.status_code == 200
        result = listed.json()["result"][0]
        assert {k: result[k] for k in (".id", "name", "address-pool", "profile")} == {
            ".id": "*1", "name": "hotspot1", "address-pool": "pool1", "profile": "default",
        }  # fmt: skip

        filtered = run(admin, router, command="ip/hotspot", method="GET", params={"?name": "hotspot1"})
        assert [h["name"] for h in filtered.json()["result"]] == ["hotspot1"]
        assert run(admin, router, command="ip/hotspot", params={"?name": "nope"}).json()["result"] == []

        # PUT ip/hotspot/set and DELETE ip/hotspot/remove (the documented method table) reach the console verbs
        changed = run(admin, router, command="ip/hotspot/set", method="PUT", data={".id": "*1", "idle-timeout": "10m"})
        assert changed.status_code == 200, changed.content
        assert routeros_simulator.find("ip/hotspot", name="hotspot1")[0]["idle-timeout"] == "10m"
        removed = run(admin, router, command="ip/hotspot/remove", method="DELETE", data={".id": "*1"})
        assert removed.status_code == 200 and routeros_simulator.items("ip/hotspot") == []

    def test_failing_command_example(self, admin, router):
        response = run(admin, router, command="invalid/command", method="GET")
        assert response.status_code == 400
        assert response.json() == {
            "router_id": router.pk, "command": "invalid/command", "method": "GET",
            "error": "Bad Request: no such command or directory (invalid)", "status_code": 400,
        }  # fmt: skip

    def test_patch_and_delete_items_by_id(self, admin, router, routeros_simulator):
        run(admin, router, command="ip/address", method="PUT", data={"address": "10.9.0.1/24", "interface": "e2"})
        item = routeros_simulator.find("ip/address", address="10.9.0.1/24")[0]
        patched = run(admin, router, command=f"ip/address/{item['.id']}", method="PATCH", data={"comment": "x"})
        assert patched.json()["result"]["comment"] == "x"
        assert run(admin, router, command=f"ip/address/{item['.id']}", method="DELETE").status_code == 200
        assert not routeros_simulator.find("ip/address", address="10.9.0.1/24")


class TestIsolationAndSecrets:
    def test_other_organization_router_is_404(self, admin, make_gateway, other_organization):
        theirs = make_gateway(organization=other_organization, name="Theirs")
        for response in (
            admin.get(f"{ROUTERS}{theirs.pk}/"),
            admin.put(f"{ROUTERS}{theirs.pk}/", {"name": "x"}, format="json"),
            admin.delete(f"{ROUTERS}{theirs.pk}/"),
            admin.post(f"{ROUTERS}{theirs.pk}/test-connection/"),
            admin.get(f"{ROUTERS}{theirs.pk}/device-info/"),
            admin.post(f"{ROUTERS}{theirs.pk}/execute-command/", {"command": "ip/address"}, format="json"),
            admin.get(f"{ROUTERS}{theirs.pk}/packages/"),
        ):
            error_of(response, 404)
        assert admin.get(ROUTERS).json() == []
        assert Gateway.objects.filter(pk=theirs.pk).exists()

    def test_cannot_create_in_another_organization(self, admin, other_organization):
        data = {
            "name": "r",
            "host": "10.0.0.1",
            "username": "a",
            "password": "p",
            "organization": str(other_organization.pk),
        }
        assert "organization" in error_of(admin.post(ROUTERS, data, format="json"), 400)

    def test_site_grants_limit_what_is_seen(self, client_as, make_gateway, organization):
        site, other_site = SiteFactory(organization=organization), SiteFactory(organization=organization)
        mine, _ = make_gateway(site=site, name="mine"), make_gateway(site=other_site, name="other")
        client, _ = client_as(Role.NETWORK_ADMIN, sites=[site])
        assert [r["name"] for r in client.get(ROUTERS).json()] == ["mine"]
        data = {"name": "new", "host": "10.0.0.1", "username": "a", "password": "p"}
        assert "site" in error_of(client.post(ROUTERS, data, format="json"), 400)
        created = client.post(ROUTERS, {**data, "site": str(site.pk)}, format="json")
        assert created.status_code == 201, created.content
        assert mine.pk != created.json()["id"]

    def test_password_is_write_only_and_encrypted(self, admin):
        data = {"name": "r", "host": "10.0.0.1", "username": "a", "password": "s3cret-Pw"}
        created = admin.post(ROUTERS, data, format="json")
        assert b"s3cret-Pw" not in created.content and "password" not in created.json()
        router_id = created.json()["id"]
        for response in (admin.get(ROUTERS), admin.get(f"{ROUTERS}{router_id}/"), admin.get(f"{V1}{router_id}/")):
            assert b"s3cret-Pw" not in response.content and b"password" not in response.content
        with connection.cursor() as cursor:
            cursor.execute("SELECT password FROM gateways_gateway WHERE id = %s", [router_id])
            stored = cursor.fetchone()[0]
        assert stored != "s3cret-Pw" and "s3cret" not in stored and stored.startswith("gAAAA")
        assert Gateway.objects.get(pk=router_id).password == "s3cret-Pw"

    def test_put_without_password_keeps_it(self, admin, router):
        response = admin.put(f"{ROUTERS}{router.pk}/", {"name": "Renamed"}, format="json")
        assert response.status_code == 200
        router.refresh_from_db()
        assert router.password == "routeros-pw" and router.name == "Renamed"
        assert admin.post(f"{ROUTERS}{router.pk}/test-connection/").json()["is_online"] is True

    def test_unauthenticated_is_401(self, api_client):
        error_of(api_client.get(ROUTERS), 401)


class TestPermissions:
    def test_viewer_reads_tests_but_cannot_write(self, client_as, router):
        viewer, _ = client_as(Role.VIEWER)
        assert viewer.get(ROUTERS).status_code == 200
        assert viewer.get(f"{ROUTERS}{router.pk}/device-info/").status_code == 200
        assert viewer.post(f"{ROUTERS}{router.pk}/test-connection/").status_code == 200
        error_of(viewer.post(ROUTERS, {"name": "r"}, format="json"), 403)
        error_of(viewer.put(f"{ROUTERS}{router.pk}/", {"name": "x"}, format="json"), 403)
        error_of(viewer.delete(f"{ROUTERS}{router.pk}/"), 403)
        error_of(run(viewer, router, command="system/resource"), 403)

    def test_organization_required_with_several(self, make_user, client_for, organization, other_organization):
        from netfleet.accounts.factories import MembershipFactory

        user = make_user(role=Role.NETWORK_ADMIN, organization=organization)
        MembershipFactory(user=user, organization=other_organization, role=Role.NETWORK_ADMIN)
        client = client_for(user)
        data = {"name": "r", "host": "10.0.0.1", "username": "a", "password": "p"}
        assert "organization" in error_of(client.post(ROUTERS, data, format="json"), 400)
        created = client.post(ROUTERS, {**data, "organization": str(other_organization.pk)}, format="json")
        assert created.status_code == 201
        assert Gateway.objects.get(pk=created.json()["id"]).organization == other_organization


class TestBadInput:
    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"host": "http://192.168.1.1"}, "host"),
            ({"host": "bad host!"}, "host"),
            ({"host": "999.1.1.1"}, "host"),
            ({"port": 0}, "port"),
            ({"port": 70000}, "port"),
            ({"port": "eighty"}, "port"),
        ],
    )
    def test_invalid_values(self, admin, change, field):
        data = {"name": "r", "host": "10.0.0.1", "username": "a", "password": "p", **change}
        message = error_of(admin.post(ROUTERS, data, format="json"), 400)
        assert message.startswith(f"{field}: ")

    def test_missing_fields_are_named(self, admin):
        message = error_of(admin.post(ROUTERS, {}, format="json"), 400)
        for field in ("name", "host", "username", "password"):
            assert f"{field}: This field is required." in message

    @pytest.mark.parametrize(
        "command", ["../../system/reboot", "ip/../../../etc", "ip address", "ip/address?x=1", "", "ip/$(id)"]
    )
    def test_bad_command_path(self, admin, router, command):
        message = error_of(run(admin, router, command=command), 400)
        assert message.startswith("command: ")

    def test_bad_method_and_data(self, admin, router):
        assert "method" in error_of(run(admin, router, command="ip/address", method="TRACE"), 400)
        assert "data" in error_of(run(admin, router, command="ip/address", method="POST", data=[1]), 400)
        assert run(admin, router, command="system/identity", method="get").status_code == 200

    def test_v1_uses_the_envelope(self, admin):
        response = admin.post(V1, {"host": "bad host!"}, format="json")
        assert response.status_code == 422
        fields = {item["field"] for item in response.json()["error"]["details"]}
        assert {"body.host", "body.name", "body.username", "body.password"} <= fields


class TestUnreachableAndSlow:
    def test_stopped_router_test_connection_is_offline(self, admin, router, routeros_simulator):
        admin.post(f"{ROUTERS}{router.pk}/test-connection/")
        routeros_simulator.stop()
        response = admin.post(f"{ROUTERS}{router.pk}/test-connection/")
        assert response.status_code == 200
        assert response.json() == {"router_id": router.pk, "is_online": False, "message": "Connection test completed"}
        router.refresh_from_db()
        assert not router.is_online and "could not be reached" in router.last_error

    def test_stopped_router_command_is_502(self, admin, router, routeros_simulator):
        routeros_simulator.stop()
        response = run(admin, router, command="system/resource")
        assert response.status_code == 502
        assert response.json()["status_code"] == 502 and "could not be reached" in response.json()["error"]
        assert "could not be reached" in error_of(admin.get(f"{ROUTERS}{router.pk}/device-info/"), 502)

    @override_settings(NETFLEET_GATEWAYS_READ_TIMEOUT=0.3)
    def test_slow_router_is_504(self, admin, router, routeros_simulator):
        routeros_simulator.delay = 1.0
        assert "in time" in error_of(admin.post(f"{ROUTERS}{router.pk}/test-connection/"), 504)
        router.refresh_from_db()
        assert not router.is_online and router.last_error
        assert "in time" in error_of(admin.get(f"{ROUTERS}{router.pk}/device-info/"), 504)
        slow = run(admin, router, command="system/resource")
        assert slow.status_code == 504 and slow.json()["status_code"] == 504

    def test_wrong_router_password_is_offline_with_reason(self, admin, make_gateway, routeros_simulator):
        router = make_gateway(routeros_simulator, password="wrong")
        assert admin.post(f"{ROUTERS}{router.pk}/test-connection/").json()["is_online"] is False
        router.refresh_from_db()
        assert router.last_error == "Unauthorized"


class TestApiV1:
    def test_same_routes_with_envelope(self, admin, router):
        listed = admin.get(V1).json()
        assert listed["count"] == 1 and listed["results"][0]["id"] == router.pk
        assert "organization" in listed["results"][0] and "password" not in listed["results"][0]
        assert admin.post(f"{V1}{router.pk}/test-connection/").json()["is_online"] is True
        assert admin.get(f"{V1}{router.pk}/device-info/").json()["device_info"]["cpu_load"] == "5%"
        failed = admin.post(f"{V1}{router.pk}/execute-command/", {"command": "invalid/command"}, format="json")
        assert failed.status_code == 400
        error = failed.json()["error"]
        assert error["code"] == 400 and error["message"] == "Bad Request: no such command or directory (invalid)"
        missing = admin.get(f"{V1}999999/").json()["error"]
        assert missing["code"] == 404 and missing["request_id"]
        assert admin.delete(f"{V1}{router.pk}/").status_code == 204
