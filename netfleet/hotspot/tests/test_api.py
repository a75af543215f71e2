"""Hotspot packages, vouchers and sessions over HTTP, synced to the RouterOS simulator over a real socket."""

import pytest

from netfleet.accounts.roles import Role
from netfleet.hotspot.models import HotspotSettings, Package

pytestmark = pytest.mark.django_db

PACKAGES = "/routers/packages/"
PROFILES = "ip/hotspot/user/profile"
SPEC_PACKAGE_FIELDS = {
    "id", "name", "package_type", "package_type_display", "duration_hours", "duration_display", "price",
    "currency", "download_speed_mbps", "upload_speed_mbps", "download_speed_display", "upload_speed_display",
    "speed_display", "description", "is_active",
}  # fmt: skip
BASIC = {
    "name": "Basic Hourly", "package_type": "hourly", "duration_hours": 1, "price": "2.50",
    "download_speed_mbps": 10, "upload_speed_mbps": 5, "description": "Basic internet access for 1 hour",
}  # fmt: skip
PREMIUM = {
    "name": "Premium Monthly", "package_type": "monthly", "price": "150.00", "download_speed_mbps": 100,
    "upload_speed_mbps": 50, "description": "High-speed internet for 1 month",
}  # fmt: skip


@pytest.fixture
def admin(client_as):
    client, _ = client_as(Role.NETWORK_ADMIN)
    return client


@pytest.fixture
def router(make_gateway, routeros_simulator):
    return make_gateway(routeros_simulator)


def create(client, router, **data):
    return client.post(PACKAGES, {"router": router.pk, **data}, format="json")


def error_of(response, code):
    assert response.status_code == code, response.content
    assert set(response.json()) == {"error"} and isinstance(response.json()["error"], str)
    return response.json()["error"]


class TestPackages:
    def test_router_packages_spec_shape(self, admin, router):
        first = create(admin, router, **BASIC)
        assert first.status_code == 201, first.content
        second = create(admin, router, **PREMIUM)
        assert second.status_code == 201, second.content
        create(admin, router, **{**BASIC, "name": "Old", "is_active": False})
        body = admin.get(f"/routers/{router.pk}/packages/").json()
        assert body["router_id"] == router.pk and body["router_name"] == "Office Router"
        assert body["message"] == "Found 2 active packages for Office Router"
        assert [set(p) for p in body["packages"]] == [SPEC_PACKAGE_FIELDS] * 2
        assert body["packages"][0] == {
            "id": first.json()["id"], "name": "Basic Hourly", "package_type": "hourly",
            "package_type_display": "Hourly Package", "duration_hours": 1, "duration_display": "1 hour",
            "price": "2.50", "currency": "KES", "download_speed_mbps": 10, "upload_speed_mbps": 5,
            "download_speed_display": "10 Mbps", "upload_speed_display": "5 Mbps",
            "speed_display": "10 Mbps / 5 Mbps", "description": "Basic internet access for 1 hour", "is_active": True,
        }  # fmt: skip
        premium = body["packages"][1]
        assert (premium["duration_hours"], premium["duration_display"]) == (720, "1 month")
        assert premium["package_type_display"] == "Monthly Package" and premium["speed_display"] == "100 Mbps / 50 Mbps"
        # the Python example's line
        line = [f"- {p['name']}: {p['speed_display']} for {p['duration_display']} at {p['price']} {p['currency']}"
                for p in body["packages"]]  # fmt: skip
        assert line[0] == "- Basic Hourly: 10 Mbps / 5 Mbps for 1 hour at 2.50 KES"

    def test_create_update_deactivate_sync_the_profile(self, admin, router, routeros_simulator):
        created = create(admin, router, **BASIC)
        assert created.json()["sync_state"] == "synced", created.content
        profile = routeros_simulator.find(PROFILES, name="Basic Hourly")[0]
        assert (profile["rate-limit"], profile["session-timeout"], profile["shared-users"]) == ("5M/10M", "1h", "1")
        package_id = created.json()["id"]

        changed = admin.patch(
            f"{PACKAGES}{package_id}/", {"download_speed_mbps": 20, "duration_hours": 24}, format="json"
        )
        assert changed.status_code == 200 and changed.json()["sync_state"] == "synced"
        profile = routeros_simulator.find(PROFILES, name="Basic Hourly")[0]
        assert (profile["rate-limit"], profile["session-timeout"]) == ("5M/20M", "1d")

        renamed = admin.patch(f"{PACKAGES}{package_id}/", {"name": "Daily"}, format="json")
        assert renamed.status_code == 200
        assert not routeros_simulator.find(PROFILES, name="Basic Hourly")
        assert routeros_simulator.find(PROFILES, name="Daily")[0][".id"] == profile[".id"]

        deactivated = admin.patch(f"{PACKAGES}{package_id}/", {"is_active": False}, format="json")
        assert deactivated.json()["is_active"] is False and deactivated.json()["sync_state"] == "synced"
        assert routeros_simulator.find(PROFILES, name="Daily")[0]["comment"].endswith("(inactive)")
        assert admin.get(f"/routers/{router.pk}/packages/").json()["packages"] == []

        deleted = admin.delete(f"{PACKAGES}{package_id}/")
        assert deleted.json() == {"message": 'Package "Daily" has been successfully deleted'}
        assert not routeros_simulator.find(PROFILES, name="Daily")

    def test_monthly_is_720_hours(self, admin, router, routeros_simulator):
        body = create(admin, router, **PREMIUM).json()
        assert body["duration_hours"] == 720
        assert routeros_simulator.find(PROFILES, name="Premium Monthly")[0]["session-timeout"] == "4w2d"

    def test_currency_comes_from_the_organization(self, admin, router, organization):
        HotspotSettings.objects.create(organization=organization, currency="USD")
        assert create(admin, router, **BASIC).json()["currency"] == "USD"

    def test_unreachable_router_keeps_the_package_with_the_error(self, admin, router, routeros_simulator):
        routeros_simulator.stop()
        created = create(admin, router, **BASIC)
        assert created.status_code == 201
        assert created.json()["sync_state"] == "error" and "could not be reached" in created.json()["sync_error"]

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"duration_hours": 25}, "duration_hours"),
            ({"duration_hours": 0}, "duration_hours"),
            ({"package_type": "monthly", "duration_hours": 100}, "duration_hours"),
            ({"package_type": "weekly"}, "package_type"),
            ({"price": "0.00"}, "price"),
            ({"price": "-1"}, "price"),
            ({"download_speed_mbps": None}, "download_speed_mbps"),
            ({"upload_speed_mbps": 0}, "upload_speed_mbps"),
        ],
    )
    def test_validation(self, admin, router, change, field):
        message = error_of(create(admin, router, **{**BASIC, **change}), 400)
        assert message.startswith(f"{field}: ")
        assert not Package.objects.exists()

    def test_missing_fields(self, admin, router):
        message = error_of(admin.post(PACKAGES, {"router": router.pk}, format="json"), 400)
        for field in ("name", "package_type", "price", "download_speed_mbps", "upload_speed_mbps"):
            assert f"{field}: This field is required." in message

    def test_names_are_unique_per_router(self, admin, router, make_gateway):
        assert create(admin, router, **BASIC).status_code == 201
        assert create(admin, router, **BASIC).status_code == 409
        other = make_gateway(name="Other", port=10)
        assert create(admin, other, **BASIC).status_code == 201

    def test_isolation(self, admin, make_gateway, other_organization):
        theirs = make_gateway(organization=other_organization, name="Theirs")
        package = Package.objects.create(router=theirs, name="p", package_type="hourly", duration_hours=1,
                                         price="1.00", download_speed_mbps=1, upload_speed_mbps=1)  # fmt: skip
        error_of(admin.get(f"{PACKAGES}{package.pk}/"), 404)
        error_of(admin.get(f"/routers/{theirs.pk}/packages/"), 404)
        assert admin.get(PACKAGES).json() == []
        assert "router" in error_of(create(admin, theirs, **BASIC), 400)

    def test_viewer_reads_only(self, client_as, admin, router):
        create(admin, router, **BASIC)
        viewer, _ = client_as(Role.VIEWER)
        assert len(viewer.get(PACKAGES).json()) == 1
        error_of(create(viewer, router, **{**BASIC, "name": "x"}), 403)

    def test_api_v1(self, admin, router):
        response = admin.post("/api/v1/hotspot/packages/", {"router": router.pk, **BASIC}, format="json")
        assert response.status_code == 201
        assert admin.get("/api/v1/hotspot/packages/").json()["count"] == 1
        bad = admin.post("/api/v1/hotspot/packages/", {"router": router.pk}, format="json")
        assert bad.status_code == 422 and bad.json()["error"]["details"]
        assert admin.get(f"/api/v1/routers/{router.pk}/packages/").json()["packages"][0]["name"] == "Basic Hourly"


class TestVouchersAndSessions:
    @pytest.fixture
    def package(self, admin, router):
        return Package.objects.get(pk=create(admin, router, **BASIC).json()["id"])

    def test_vouchers_become_hotspot_users(self, admin, router, package, routeros_simulator):
        response = admin.post(
            f"/routers/{router.pk}/vouchers/",
            {"package": package.pk, "count": 3, "prefix": "WIFI-", "length": 6, "limit_bytes_total": 1073741824},
            format="json",
        )
        assert response.status_code == 201, response.content
        body = response.json()
        codes = [v["code"] for v in body["vouchers"]]
        assert len(set(codes)) == 3 and all(c.startswith("WIFI-") and len(c) == 11 for c in codes)
        assert body["message"] == "Created 3 vouchers for Basic Hourly"
        users = {u["name"]: u for u in routeros_simulator.items("ip/hotspot/user")}
        assert set(users) == set(codes)
        user = users[codes[0]]
        assert (user["profile"], user["limit-uptime"], user["limit-bytes-total"], user["password"]) == (
            "Basic Hourly",
            "1h",
            "1073741824",
            codes[0],
        )

        routeros_simulator.add_active_session(user=codes[0])
        listed = admin.get(f"/routers/{router.pk}/vouchers/").json()["vouchers"]
        by_code = {v["code"]: v for v in listed}
        assert by_code[codes[0]]["used"] is True and by_code[codes[0]]["bytes_out"] == 5242880
        assert by_code[codes[1]]["used"] is False and by_code[codes[1]]["package_id"] == package.pk

        revoked = admin.delete(f"/routers/{router.pk}/vouchers/{codes[0]}/")
        assert revoked.status_code == 200 and revoked.json() == {"message": f'Voucher "{codes[0]}" has been revoked'}
        assert codes[0] not in {u["name"] for u in routeros_simulator.items("ip/hotspot/user")}
        assert routeros_simulator.items("ip/hotspot/active") == []
        error_of(admin.delete(f"/routers/{router.pk}/vouchers/{codes[0]}/"), 404)

    def test_voucher_input(self, admin, router, package, make_gateway):
        url = f"/routers/{router.pk}/vouchers/"
        assert "count" in error_of(admin.post(url, {"package": package.pk, "count": 0}, format="json"), 400)
        assert "count" in error_of(admin.post(url, {"package": package.pk, "count": 501}, format="json"), 400)
        assert "package" in error_of(admin.post(url, {"count": 1}, format="json"), 400)
        other = make_gateway(name="Other", port=10)
        assert "package" in error_of(
            admin.post(f"/routers/{other.pk}/vouchers/", {"package": package.pk, "count": 1}, format="json"), 400
        )
        Package.objects.filter(pk=package.pk).update(is_active=False)
        assert "inactive" in error_of(admin.post(url, {"package": package.pk, "count": 1}, format="json"), 409)

    def test_sessions_list_and_kick(self, admin, router, routeros_simulator):
        session = routeros_simulator.add_active_session(user="alice", address="10.5.50.7")
        body = admin.get(f"/routers/{router.pk}/sessions/").json()
        assert body["router_id"] == router.pk and body["message"] == "Found 1 active sessions"
        assert body["sessions"][0] | {"bytes_in": 0} == {
            "id": session, "user": "alice", "address": "10.5.50.7", "mac_address": "AA:BB:CC:DD:EE:01",
            "server": "hotspot1", "login_by": "http-chap", "uptime": "5m12s", "session_time_left": "55m",
            "bytes_in": 0, "bytes_out": 5242880,
        }  # fmt: skip
        kicked = admin.delete(f"/routers/{router.pk}/sessions/{session}/")
        assert kicked.status_code == 200, kicked.content
        assert routeros_simulator.items("ip/hotspot/active") == []
        error_of(admin.delete(f"/routers/{router.pk}/sessions/{session}/"), 404)
        error_of(admin.delete(f"/routers/{router.pk}/sessions/not-an-id/"), 404)

    def test_viewer_cannot_kick_or_sell(self, client_as, router, package, routeros_simulator):
        session = routeros_simulator.add_active_session(user="alice")
        viewer, _ = client_as(Role.VIEWER)
        assert viewer.get(f"/routers/{router.pk}/sessions/").status_code == 200
        error_of(viewer.delete(f"/routers/{router.pk}/sessions/{session}/"), 403)
        error_of(
            viewer.post(f"/routers/{router.pk}/vouchers/", {"package": package.pk, "count": 1}, format="json"), 403
        )

    def test_api_v1_routes(self, admin, router, package, routeros_simulator):
        session = routeros_simulator.add_active_session(user="bob")
        assert admin.get(f"/api/v1/routers/{router.pk}/sessions/").json()["sessions"][0]["id"] == session
        assert admin.delete(f"/api/v1/routers/{router.pk}/sessions/{session}/").status_code == 204
        created = admin.post(
            f"/api/v1/routers/{router.pk}/vouchers/", {"package": package.pk, "count": 1}, format="json"
        )
        assert created.status_code == 201
        missing = admin.delete(f"/api/v1/routers/{router.pk}/vouchers/NOPE1234/")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == 404
