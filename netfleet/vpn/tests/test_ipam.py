"""IP pools over HTTP: subnets, overlap checks, allocation (race-free, 409 when exhausted) and tenancy."""

import threading

import pytest
from django.conf import settings
from django.db import connection, connections

from netfleet.accounts.roles import Role
from netfleet.testing.fixtures import bearer_client
from netfleet.vpn.models import IpAddress, Subnet

SUBNETS = "/api/v1/ipam/subnet/"


def error_of(response, code):
    assert response.status_code == code, response.content
    error = response.json()["error"]
    assert error["code"] == code and error["request_id"]
    return error


def fields_of(error):
    return {item["field"]: item["message"] for item in error.get("details") or []}


@pytest.fixture
def admin(client_as):
    client, _user = client_as(Role.NETWORK_ADMIN)
    return client


def create_subnet(client, organization, cidr, name="pool"):
    response = client.post(SUBNETS, {"name": name, "organization": str(organization.pk), "subnet": cidr}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.mark.django_db
class TestSubnets:
    def test_crud_and_version(self, admin, organization):
        v4 = create_subnet(admin, organization, "10.8.0.0/24")
        v6 = create_subnet(admin, organization, "fd00:1::/64", name="v6")
        assert v4["version"] == 4 and v6["version"] == 6
        body = admin.get(SUBNETS).json()
        assert set(body) == {"count", "next", "previous", "results"} and body["count"] == 2
        assert admin.get(f"{SUBNETS}?version=6").json()["count"] == 1
        response = admin.patch(f"{SUBNETS}{v4['id']}/", {"name": "tunnels"}, format="json")
        assert response.status_code == 200 and response.json()["name"] == "tunnels"
        response = admin.put(
            f"{SUBNETS}{v4['id']}/",
            {"name": "tunnels", "organization": str(organization.pk), "subnet": "10.9.0.0/24"},
            format="json",
        )
        assert response.status_code == 200 and response.json()["subnet"] == "10.9.0.0/24"
        assert admin.delete(f"{SUBNETS}{v6['id']}/").status_code == 204

    def test_bad_and_overlapping_pools_are_422(self, admin, organization, other_organization):
        create_subnet(admin, organization, "10.8.0.0/16")
        base = {"name": "x", "organization": str(organization.pk)}
        for cidr in ("10.8.4.0/24", "10.0.0.0/8", "10.8.0.0/16", "not-a-cidr", "10.8.0.1/24"):
            error = error_of(admin.post(SUBNETS, {**base, "subnet": cidr}, format="json"), 422)
            assert "body.subnet" in fields_of(error), cidr
        assert Subnet.objects.count() == 1
        # another organization may use the same private range
        assert Subnet.objects.filter(subnet="10.8.0.0/16").count() == 1
        other = Subnet(organization=other_organization, name="x", subnet="10.8.0.0/16")
        other.full_clean()

    def test_allocation_and_exhausted_pool(self, admin, organization):
        subnet = create_subnet(admin, organization, "192.168.50.0/30")  # two hosts: .1 and .2
        url = f"{SUBNETS}{subnet['id']}/ip-address/"
        first = admin.post(url, {"description": "a"}, format="json")
        assert first.status_code == 201, first.content
        assert first.json()["ip_address"] == "192.168.50.1" and first.json()["subnet"] == subnet["id"]
        assert admin.post(url, {}, format="json").json()["ip_address"] == "192.168.50.2"
        error = error_of(admin.post(url, {}, format="json"), 409)
        assert "no free address" in error["message"]
        listed = admin.get(url).json()
        assert listed["count"] == 2 and [row["ip_address"] for row in listed["results"]] == [
            "192.168.50.1",
            "192.168.50.2",
        ]

    def test_specific_address(self, admin, organization):
        subnet = create_subnet(admin, organization, "10.1.0.0/24")
        url = f"{SUBNETS}{subnet['id']}/ip-address/"
        assert admin.post(url, {"ip_address": "10.1.0.77"}, format="json").status_code == 201
        error_of(admin.post(url, {"ip_address": "10.1.0.77"}, format="json"), 409)
        error = error_of(admin.post(url, {"ip_address": "10.2.0.1"}, format="json"), 422)
        assert "body.ip_address" in fields_of(error)

    def test_tenancy_and_roles(self, admin, client_as, organization, other_organization):
        subnet = create_subnet(admin, organization, "10.1.0.0/24")
        stranger, _ = client_as(Role.NETWORK_ADMIN, org=other_organization)
        assert stranger.get(SUBNETS).json()["count"] == 0
        error_of(stranger.get(f"{SUBNETS}{subnet['id']}/"), 404)
        error_of(stranger.get(f"{SUBNETS}{subnet['id']}/ip-address/"), 404)
        error_of(stranger.post(f"{SUBNETS}{subnet['id']}/ip-address/", {}, format="json"), 404)
        viewer, _ = client_as(Role.VIEWER)
        assert viewer.get(f"{SUBNETS}{subnet['id']}/ip-address/").status_code == 200
        error_of(viewer.post(f"{SUBNETS}{subnet['id']}/ip-address/", {}, format="json"), 403)
        error_of(viewer.post(SUBNETS, {"name": "x", "organization": str(organization.pk)}, format="json"), 403)
        error_of(viewer.delete(f"{SUBNETS}{subnet['id']}/"), 403)
        assert not IpAddress.objects.exists()


@pytest.mark.skipif(
    "sqlite" in settings.DATABASES["default"]["ENGINE"],
    reason="needs the suite's PostgreSQL (`make test`): SQLite's in-memory test database locks whole tables",
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_allocations_never_share_an_address(make_user, organization):
    user = make_user(role=Role.NETWORK_ADMIN, organization=organization)
    subnet = Subnet.objects.create(organization=organization, name="race", subnet="10.50.0.0/28")  # 14 hosts
    url = f"{SUBNETS}{subnet.pk}/ip-address/"
    per_thread, threads, results, barrier = 4, 3, [], threading.Barrier(3)

    def allocate():
        client = bearer_client(user)
        try:
            barrier.wait()
            for _ in range(per_thread):
                response = client.post(url, {}, format="json")
                results.append((response.status_code, response.json().get("ip_address")))
        finally:
            connections.close_all()

    workers = [threading.Thread(target=allocate) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert [code for code, _ in results] == [201] * (per_thread * threads), results
    addresses = [address for _, address in results]
    assert len(set(addresses)) == len(addresses)
    assert IpAddress.objects.filter(subnet=subnet).count() == per_thread * threads
    if connection.vendor == "postgresql":  # the row lock, not luck: the database is a real concurrent server
        assert sorted(addresses, key=lambda ip: int(ip.rsplit(".", 1)[1]))[-1] == "10.50.0.12"
