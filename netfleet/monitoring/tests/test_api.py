"""WiFi sessions, the dashboard, nearby devices and the time series retention, over HTTP where there is an API."""

from datetime import UTC, datetime, timedelta

import pytest

from netfleet.accounts.roles import Role
from netfleet.controller.factories import DeviceGroupFactory, make_device
from netfleet.monitoring import services
from netfleet.monitoring.models import Point, Rollup, WifiSession
from netfleet.monitoring.timeseries import HOUR, get_backend, to_us

from .conftest import document

pytestmark = pytest.mark.django_db

T0 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
A, B, C = "AA:BB:CC:00:00:01", "AA:BB:CC:00:00:02", "AA:BB:CC:00:00:03"
SESSIONS = "/api/v1/monitoring/wifi-session/"


def at(minutes):
    return T0 + timedelta(minutes=minutes)


def iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


class TestWifiSessions:
    @pytest.fixture
    def sessions(self, organization, other_organization, post_document):
        group = DeviceGroupFactory(organization=organization)
        ap = make_device(organization, group=group)
        foreign = make_device(other_organization)
        post_document(ap, document(clients=[A, B]), time=at(0))
        post_document(ap, document(clients=[B, C]), time=at(10))  # A left, C came
        post_document(ap, document(clients=[C]), time=at(20))  # B left
        post_document(foreign, document(clients=[A]), time=at(0))
        return ap, foreign, group

    def test_opened_and_closed_from_ingested_data(self, sessions):
        ap, _, _ = sessions
        rows = WifiSession.objects.filter(device=ap).order_by("mac_address")
        assert [(s.mac_address, s.interface_name, s.ssid, s.start_time, s.stop_time) for s in rows] == [
            (A, "wlan0", "guests", at(0), at(10)),
            (B, "wlan0", "guests", at(0), at(20)),
            (C, "wlan0", "guests", at(10), None),
        ]

    def test_list_scoped_and_filtered(self, sessions, client_as, organization):
        ap, foreign, group = sessions
        client, _ = client_as(Role.VIEWER)

        def macs(query=""):
            body = client.get(f"{SESSIONS}?{query}").json()
            assert set(body) == {"count", "next", "previous", "results"}
            return sorted(item["mac_address"] for item in body["results"])

        assert macs() == [A, B, C]  # not the other organization's session
        assert macs(f"device={ap.pk}") == [A, B, C]
        assert macs(f"device={foreign.pk}") == []
        assert macs(f"device__organization={organization.pk}") == [A, B, C]
        assert macs(f"device__group={group.pk}") == [A, B, C]
        assert macs(f"start_time__gt={iso(at(0))}") == [C]
        assert macs(f"start_time__gte={iso(at(0))}") == [A, B, C]
        assert macs(f"start_time={iso(at(10))}") == [C]
        assert macs(f"stop_time__lt={iso(at(20))}") == [A]
        assert macs(f"stop_time__lte={iso(at(20))}") == [A, B]
        assert macs(f"stop_time__gte={iso(at(20))}") == [B]
        body = client.get(f"{SESSIONS}?page_size=2&page=2").json()
        assert body["count"] == 3 and len(body["results"]) == 1 and body["next"] is None

    def test_detail(self, sessions, client_as):
        ap, foreign, _ = sessions
        client, _ = client_as(Role.VIEWER)
        session = WifiSession.objects.get(device=ap, mac_address=C)
        body = client.get(f"{SESSIONS}{session.pk}/").json()
        assert body["mac_address"] == C and body["device"] == str(ap.pk) and body["stop_time"] is None
        assert body["start_time"] == iso(at(10)) and body["vendor"] == "ACME"
        other = WifiSession.objects.get(device=foreign)
        assert client.get(f"{SESSIONS}{other.pk}/").status_code == 404


class TestDashboard:
    URL = "/api/v1/monitoring/dashboard/"
    RANGE = "start=2024-03-01 10:00:00&end=2024-03-01 11:00:00"

    @pytest.fixture
    def fleet(self, organization, other_organization, post_document):
        mine = [make_device(organization) for _ in range(2)]
        theirs = make_device(other_organization)
        make_device(organization)  # never monitored: unknown
        post_document(mine[0], document(rx=100, tx=10, clients=[A, B]), time=at(0))
        post_document(mine[1], document(rx=200, tx=20, clients=[C], load=1.9), time=at(5))
        post_document(theirs, document(rx=5000, tx=500, clients=[A]), time=at(0))
        return mine, theirs

    def test_scoped_to_the_callers_organizations(self, fleet, client_as, organization):
        client, _ = client_as(Role.VIEWER)
        body = client.get(f"{self.URL}?{self.RANGE}").json()
        assert body["devices_by_status"] == {"unknown": 1, "ok": 1, "problem": 1, "critical": 0, "deactivated": 0}
        traffic, clients = body["charts"]
        assert traffic["title"] == "General Traffic"
        assert dict(traffic["traces"])["download"][0] == 300 and traffic["summary"] == {"upload": 30, "download": 300}
        assert dict(clients["traces"])["wifi_clients"][0] == 3
        assert [org["slug"] for org in body["organizations"]] == [organization.slug]

    def test_superuser_sees_every_organization_and_filters_by_slug(self, fleet, admin_client, other_organization):
        body = admin_client.get(f"{self.URL}?{self.RANGE}").json()
        assert body["charts"][0]["summary"] == {"upload": 530, "download": 5300}
        assert len(body["organizations"]) == 2
        only = admin_client.get(f"{self.URL}?{self.RANGE}&organization_slug={other_organization.slug}").json()
        assert only["charts"][0]["summary"] == {"upload": 500, "download": 5000}
        assert only["devices_by_status"]["ok"] == 1 and sum(only["devices_by_status"].values()) == 1

    def test_rolled_up_hours_change_no_value(self, fleet, admin_client, post_document):
        mine, _ = fleet
        post_document(mine[0], document(rx=400, tx=40, clients=[A, B, C]), time=at(40))
        queries = (self.RANGE, "start=2024-03-01 00:00:00&end=2024-03-05 00:00:00")  # 10-minute and hourly buckets

        def clients():
            bodies = [admin_client.get(f"{self.URL}?{query}").json() for query in queries]
            return bodies, [dict(body["charts"][1]["traces"])["wifi_clients"] for body in bodies]

        before, (fine, hourly) = clients()
        assert fine == [4, None, None, None, 3, None] and hourly[10] == 5  # each device's peak, summed
        get_backend().rollup(until=to_us(at(120)))
        assert Rollup.objects.filter(metric="wifi_clients").count() == 3
        # the hour's rollup (peak 3 for the first device) is not what its first 10-minute bucket holds
        assert clients()[0] == before

    @pytest.mark.parametrize(
        "query",
        ["start=2024-03-01 10:00&end=2024-03-01 11:00:00", "end=2024-03-01 11:00:00", "time=week", "location_id=x"],
    )
    def test_bad_parameters_are_400(self, admin_client, query):
        response = admin_client.get(f"{self.URL}?{query}")
        assert response.status_code == 400 and response.json()["error"]["code"] == 400

    def test_needs_monitoring_read(self, api_client):
        assert api_client.get(self.URL).status_code == 401


class TestNearbyDevices:
    @pytest.fixture
    def place(self, organization):
        from netfleet.geo.models import DeviceLocation, Location

        def put(device, longitude, latitude):
            location = Location.objects.create(
                organization=device.organization,
                name=f"loc-{device.name}",
                geometry={"type": "Point", "coordinates": [longitude, latitude]},
            )
            DeviceLocation.objects.create(device=device, location=location)

        return put

    def test_bounding_box_is_applied_in_sql(self, organization, place, client_as):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        origin, near = make_device(organization), make_device(organization)
        place(origin, 12.0, 45.0)
        place(near, 12.001, 45.0)
        client, _ = client_as(Role.VIEWER)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/api/v1/monitoring/device/{origin.pk}/nearby-devices/?distance__lte=500")
        assert [item["name"] for item in response.json()["results"]] == [near.name]
        assert any('"latitude" BETWEEN' in q["sql"] for q in queries.captured_queries)

    def test_distances_in_metres_nearest_first(self, organization, other_organization, place, client_as):
        origin, east, north, far = (make_device(organization, model=m) for m in ("ap", "ap", "router", "ap"))
        foreign = make_device(other_organization)
        place(origin, 12.0, 45.0)
        place(east, 12.001, 45.0)  # 78.63 m (0.001 degrees of longitude at 45 degrees north)
        place(north, 12.0, 45.0009)  # 100.08 m
        place(far, 12.1, 45.0)  # 7862.65 m
        place(foreign, 12.0, 45.0)
        make_device(organization)  # no location
        client, _ = client_as(Role.VIEWER)
        url = f"/api/v1/monitoring/device/{origin.pk}/nearby-devices/"
        body = client.get(url).json()
        assert set(body) == {"count", "next", "previous", "results"}
        found = [(item["name"], item["distance"], item["monitoring"]["status"]) for item in body["results"]]
        assert [name for name, _, _ in found] == [east.name, north.name, far.name]
        expected = [78.63, 100.08, 7862.65]
        assert all(abs(got - want) < 1 for (_, got, _), want in zip(found, expected, strict=True))
        assert all(status == "unknown" for _, _, status in found)

        def names(query):
            return [item["name"] for item in client.get(f"{url}?{query}").json()["results"]]

        assert names("distance__lte=100") == [east.name]
        assert names("distance__lte=101") == [east.name, north.name]
        assert names("model=router|other") == [north.name]
        assert names(f"organization={organization.pk}&distance__lte=1000") == [east.name, north.name]
        assert names(f"organization__slug={other_organization.slug}") == []
        assert names("monitoring__status=ok") == []
        assert client.get(f"{url}?distance__lte=far").status_code == 422

    def test_device_without_location_or_of_another_tenant_is_404(self, organization, other_organization, client_as):
        client, _ = client_as(Role.VIEWER)
        for device in (make_device(organization), make_device(other_organization)):
            assert client.get(f"/api/v1/monitoring/device/{device.pk}/nearby-devices/").status_code == 404


class TestRetention:
    def test_downsampling_keeps_aggregates_and_expires_old_rollups(self, device, admin_client, settings):
        settings.NETFLEET_MONITORING_RAW_RETENTION_DAYS = 7
        settings.NETFLEET_MONITORING_ROLLUP_RETENTION_DAYS = 30
        now = datetime(2024, 3, 20, 12, 0, tzinfo=UTC)
        old, ancient = to_us(datetime(2024, 3, 1, 10, 0, tzinfo=UTC)), to_us(datetime(2024, 1, 1, tzinfo=UTC))
        recent = to_us(now - timedelta(hours=1))
        minute = 60_000_000
        points = [
            (device.pk, "cpu", "", "cpu_usage", old + i * 5 * minute, float(v)) for i, v in enumerate((10, 20, 60))
        ]
        points += [(device.pk, "cpu", "", "cpu_usage", ancient, 50.0), (device.pk, "cpu", "", "cpu_usage", recent, 5.0)]
        assert get_backend().write(points) == 5
        assert get_backend().write(points) == 0  # already stored
        result = services.apply_retention(now=now)
        assert result == {"downsampled": 4, "expired": 1}
        assert list(Point.objects.values_list("value", flat=True)) == [5.0]
        rollup = Rollup.objects.get()
        assert (rollup.time, rollup.count, rollup.sum, rollup.min, rollup.max) == (
            old - old % HOUR,
            3,
            90.0,
            10.0,
            60.0,
        )
        body = admin_client.get(
            f"/api/v1/monitoring/device/{device.pk}/?start=2024-03-01 00:00:00&end=2024-03-02 00:00:00"
        ).json()
        cpu = next(chart for chart in body["charts"] if chart["title"] == "CPU Load")
        assert cpu["summary"] == {"cpu_usage": 30}
