"""The RouterOS REST simulator and netfleet's client, talking over a real loopback socket."""

import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.test import override_settings

from netfleet.core.exceptions import UpstreamTimeout, UpstreamUnreachable
from netfleet.gateways import routeros
from netfleet.gateways.services import format_uptime
from netfleet.testing.routeros import RouterOSSimulator
from netfleet.testing.servers import free_port, wait_for_port

AUTH = ("admin", "routeros-pw")


@pytest.fixture
def rest(routeros_simulator):
    with httpx.Client(base_url=f"{routeros_simulator.url}/rest", auth=AUTH, timeout=5) as client:
        yield client


@pytest.fixture
def client(routeros_simulator):
    ros = routeros.RouterOSClient(base_url=routeros_simulator.url, username="admin", password="routeros-pw")
    yield ros
    ros.close()


class TestSimulator:
    def test_basic_auth_is_required(self, routeros_simulator):
        response = httpx.get(f"{routeros_simulator.url}/rest/system/identity", auth=("admin", "wrong"))
        assert response.status_code == 401
        assert response.json() == {"error": 401, "message": "Unauthorized"}

    def test_values_are_strings_and_singletons_objects(self, rest):
        resource = rest.get("/system/resource").json()
        assert resource["cpu-load"] == "5" and resource["uptime"] == "2d15h30m45s"
        assert all(isinstance(value, str) for value in resource.values())
        assert rest.get("/system/identity").json() == {"name": "MikroTik"}

    def test_put_patch_delete_with_star_ids(self, rest):
        created = rest.put("/ip/address", json={"address": "10.0.0.1/24", "interface": "ether2", "disabled": False})
        assert created.status_code == 200
        item = created.json()
        assert item[".id"] == "*2" and item["disabled"] == "false"
        changed = rest.patch(f"/ip/address/{item['.id']}", json={"comment": "uplink"}).json()
        assert changed["comment"] == "uplink" and changed["address"] == "10.0.0.1/24"
        assert rest.delete(f"/ip/address/{item['.id']}").status_code == 204
        gone = rest.get(f"/ip/address/{item['.id']}")
        assert gone.status_code == 404 and gone.json() == {"error": 404, "message": "Not Found"}

    def test_post_runs_console_commands(self, rest):
        ret = rest.post("/ip/hotspot/user/add", json={"name": "alice", "password": "x"}).json()
        assert ret == {"ret": "*1"}
        assert rest.post("/ip/hotspot/user/set", json={".id": "*1", "comment": "vip"}).json() == []
        assert rest.get("/ip/hotspot/user/*1").json()["comment"] == "vip"
        assert rest.post("/ip/hotspot/user/remove", json={".id": "*1"}).json() == []
        assert rest.get("/ip/hotspot/user").json() == []

    def test_proplist_and_query(self, rest):
        for name, comment in (("a", "x"), ("b", "y"), ("c", "z")):
            rest.put("/ip/hotspot/user", json={"name": name, "comment": comment})
        assert rest.get("/ip/hotspot/user", params={".proplist": "name", "comment": "y"}).json() == [{"name": "b"}]
        body = {".proplist": ["name"], ".query": ["comment=x", "comment=z", "#|"]}
        assert rest.post("/ip/hotspot/user/print", json=body).json() == [{"name": "a"}, {"name": "c"}]
        body = {".proplist": ["name"], ".query": ["comment=x", "#!"]}
        assert rest.post("/ip/hotspot/user/print", json=body).json() == [{"name": "b"}, {"name": "c"}]

    def test_errors_name_the_problem(self, rest):
        assert rest.get("/invalid/command").json() == {
            "error": 400, "message": "Bad Request", "detail": "no such command or directory (invalid)",
        }  # fmt: skip
        duplicate = rest.put("/ip/hotspot/user/profile", json={"name": "default"})
        assert duplicate.status_code == 400 and "already have" in duplicate.json()["detail"]
        unknown = rest.put("/ip/hotspot/user", json={"name": "u", "colour": "red"})
        assert unknown.json()["detail"] == "unknown parameter colour"
        bad_profile = rest.put("/ip/hotspot/user", json={"name": "u", "profile": "nope"})
        assert bad_profile.json()["detail"] == "input does not match any value of profile"
        assert rest.put("/ip/hotspot/active", json={"user": "x"}).status_code == 400

    def test_active_sessions_are_read_and_removed(self, routeros_simulator, rest):
        session = routeros_simulator.add_active_session(user="alice")
        assert rest.get("/ip/hotspot/active").json()[0]["user"] == "alice"
        assert rest.delete(f"/ip/hotspot/active/{session}").status_code == 204
        assert routeros_simulator.items("ip/hotspot/active") == []


class TestClient:
    def test_reads_and_writes(self, client):
        assert client.singleton("system/identity") == {"name": "MikroTik"}
        item = client.create("ip/hotspot/user/profile", {"name": "1h", "rate-limit": "1M/2M"})
        assert client.update("ip/hotspot/user/profile", item[".id"], {"shared-users": 2})["shared-users"] == "2"
        assert client.get("ip/hotspot/user/profile", proplist=("name",), name="1h") == [{"name": "1h"}]
        assert client.print("ip/hotspot/user/profile", proplist=("name",), query=("default=true",)) == [
            {"name": "default"}
        ]
        client.remove("ip/hotspot/user/profile", item[".id"])
        assert [p["name"] for p in client.get("ip/hotspot/user/profile")] == ["default"]

    def test_falls_back_to_set_and_remove_when_id_paths_are_refused(self, routeros_simulator, client):
        routeros_simulator.accept_id_paths = False
        item = client.create("ip/hotspot/user", {"name": "bob"})
        assert client.update("ip/hotspot/user", item[".id"], {"comment": "c"})["comment"] == "c"
        client.remove("ip/hotspot/user", item[".id"])
        assert routeros_simulator.items("ip/hotspot/user") == []
        assert ("POST", "/rest/ip/hotspot/user/set") in routeros_simulator.requests
        assert ("POST", "/rest/ip/hotspot/user/remove") in routeros_simulator.requests

    def test_router_errors_keep_their_text(self, client):
        with pytest.raises(routeros.RouterOSError) as caught:
            client.request("GET", "invalid/command")
        assert caught.value.message == "Bad Request: no such command or directory (invalid)"
        assert caught.value.router_status == 400 and caught.value.status_code == 400

    @pytest.mark.parametrize("path", ["../../etc", "ip/../../x", "ip address", "ip/address?x=1", "", "ip%2faddress"])
    def test_command_paths_cannot_leave_rest(self, client, path):
        with pytest.raises(routeros.InvalidCommandPath):
            client.request("GET", path)

    def test_stopped_router_is_unreachable(self, routeros_simulator, client):
        routeros_simulator.stop()
        with pytest.raises(UpstreamUnreachable):
            client.singleton("system/identity")

    def test_slow_router_times_out(self, routeros_simulator):
        routeros_simulator.delay = 1.0
        slow = routeros.RouterOSClient(
            base_url=routeros_simulator.url, username="admin", password="routeros-pw", timeout=httpx.Timeout(0.2)
        )
        with pytest.raises(UpstreamTimeout):
            slow.singleton("system/identity")
        slow.close()

    @pytest.mark.django_db
    def test_connections_are_reused_per_gateway(self, make_gateway, routeros_simulator):
        gateway = make_gateway(routeros_simulator)
        first = routeros.client_for(gateway)
        assert routeros.client_for(gateway) is first
        gateway.password = "changed"
        assert routeros.client_for(gateway) is not first
        with override_settings(NETFLEET_GATEWAYS_READ_TIMEOUT=1.5):
            assert routeros.client_for(gateway)._http.timeout.read == 1.5
        routeros.forget_client(gateway.pk)

    @pytest.mark.django_db
    def test_credentials_are_not_logged(self, make_gateway, routeros_simulator, caplog):
        gateway = make_gateway(routeros_simulator)
        routeros_simulator.stop()
        with caplog.at_level("DEBUG"), pytest.raises(UpstreamUnreachable):
            routeros.client_for(gateway).singleton("system/identity")
        assert "routeros-pw" not in caplog.text
        routeros.forget_client(gateway.pk)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("2d15h30m45s", "2d 15:30:45"),
        ("1w2d3h4m5s", "9d 03:04:05"),
        ("45s", "0d 00:00:45"),
        ("3m12s450ms", "0d 00:03:12"),
    ],
)
def test_uptime_format(raw, shown):
    assert format_uptime(raw) == shown


def test_simulate_command_serves_routeros():
    port = free_port()
    netfleet = str(Path(sys.executable).with_name("netfleet"))
    process = subprocess.Popen(
        [netfleet, "simulate", "routeros", "--port", str(port), "--password", "pw", "--identity", "lab"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout=30, process=process)
        reply = httpx.get(f"http://127.0.0.1:{port}/rest/system/identity", auth=("admin", "pw"), timeout=5)
        assert reply.json() == {"name": "lab"}
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_simulator_listens_only_where_asked():
    with RouterOSSimulator() as simulator:
        assert simulator.host == "127.0.0.1"
        with socket.create_connection((simulator.host, simulator.port), timeout=2):
            pass
