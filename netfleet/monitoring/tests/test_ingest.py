"""Metric ingest over HTTP, read back through the chart endpoint: exact values, backfill, resends, invalid input."""

from datetime import UTC, datetime, timedelta

import pytest

from netfleet.accounts.roles import Role
from netfleet.controller.factories import make_device
from netfleet.monitoring.models import DeviceMonitoring, Point, WifiSession

from .conftest import document

pytestmark = pytest.mark.django_db

T0 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
RANGE = "start=2024-03-01 10:00:00&end=2024-03-01 11:00:00"  # 1 hour: 10-minute buckets


def minutes(n):
    return T0 + timedelta(minutes=n)


def chart(body, title):
    return next(c for c in body["charts"] if c["title"] == title)


def trace(chart_body, label):
    return dict(chart_body["traces"])[label]


def charts_of(client, device, query=RANGE):
    response = client.get(f"/api/v1/monitoring/device/{device.pk}/?{query}")
    assert response.status_code == 200, response.content
    return response.json()


class TestIngestToChart:
    def test_counter_deltas_and_reset_round_trip(self, device, post_document, admin_client):
        # eth0 counters: first reading counts whole, then deltas; at 10:10 rx went down (reset) and counts whole
        for minute, rx, tx in ((0, 1000, 500), (5, 1600, 700), (10, 300, 900), (20, 500, 1000)):
            response = post_document(device, document(rx=rx, tx=tx), time=minutes(minute))
            assert response.status_code == 200, response.content
        body = charts_of(admin_client, device)
        assert body["timeframe"] == {
            "start": "2024-03-01T10:00:00Z",
            "end": "2024-03-01T11:00:00Z",
            "bucket_seconds": 600,
        }
        assert body["x"] == [f"2024-03-01T10:{m}0:00Z" for m in range(6)]
        traffic = chart(body, "Traffic: eth0")
        assert traffic["unit"] == "bytes" and traffic["x"] == body["x"]
        assert trace(traffic, "download") == [1600, 300, 200, None, None, None]
        assert trace(traffic, "upload") == [700, 200, 100, None, None, None]
        assert traffic["summary"] == {"upload": 1000, "download": 2100}

    def test_resources_and_wifi_clients(self, device, post_document, admin_client):
        memory = {"total": 1000, "free": 200, "buffered": 100, "available": 400}
        disks = [
            {"used_bytes": 30, "size_bytes": 100, "mount_point": "/"},
            {"used_bytes": 10, "size_bytes": 100, "mount_point": "/tmp"},
        ]
        post_document(
            device,
            document(
                load=0.5,
                cpus=2,
                memory=memory,
                disks=disks,
                clients=["aa:bb:cc:00:00:01", "AA-BB-CC-00-00-02", "aa:bb:cc:00:00:01"],
            ),
            time=minutes(0),
        )
        post_document(device, document(load=1.5, cpus=2, clients=["aa:bb:cc:00:00:01"]), time=minutes(5))
        body = charts_of(admin_client, device)
        assert trace(chart(body, "CPU Load"), "cpu_usage")[0] == 50  # (25 + 75) / 2
        assert chart(body, "CPU Load")["unit"] == "%"
        # 60 % from `available` at 10:00, 70 % from free + buffered at 10:05
        assert trace(chart(body, "Memory Usage"), "memory_usage")[0] == 65
        assert trace(chart(body, "Disk Usage"), "disk_usage")[0] == 25  # (20 + 30) / 2
        clients = chart(body, "WiFi clients: wlan0")
        assert trace(clients, "wifi_clients")[0] == 2 and clients["summary"] == {"wifi_clients": 2}

    def test_mobile_signal_and_access_technology(self, device, post_document, admin_client):
        modem = {
            "name": "wwan0",
            "type": "modem-manager",
            "mobile": {"signal": {"lte": {"rssi": -70, "rsrp": -100, "rsrq": -11, "snr": 13}, "umts": {"rssi": -90}}},
        }
        post_document(device, document(extra_interfaces=[modem]), time=minutes(0))
        body = charts_of(admin_client, device)
        assert dict(chart(body, "Signal Strength: wwan0")["traces"]) == {
            "signal_strength": [-70, None, None, None, None, None],
            "signal_power": [-100, None, None, None, None, None],
        }
        assert chart(body, "Signal Quality: wwan0")["summary"] == {"signal_quality": -11, "snr": 13}
        assert chart(body, "Access Technology: wwan0")["summary"] == {"access_tech": 4}

    def test_offline_backfill_in_order_then_current(self, device, post_document, admin_client):
        # collected while offline, sent oldest first with their collection time; then the live document
        for minute, rx in ((0, 100), (10, 250), (20, 450)):
            assert post_document(device, document(rx=rx), time=minutes(minute)).status_code == 200
        assert post_document(device, document(rx=1000), time=minutes(30), current="true").status_code == 200
        body = charts_of(admin_client, device)
        assert trace(chart(body, "Traffic: eth0"), "download") == [100, 150, 200, 550, None, None]
        times = sorted(set(Point.objects.filter(device=device).values_list("time", flat=True)))
        assert [datetime.fromtimestamp(t / 1e6, tz=UTC) for t in times] == [minutes(m) for m in (0, 10, 20, 30)]
        monitoring = DeviceMonitoring.objects.get(device=device)
        assert monitoring.status_data["interfaces"][0]["statistics"]["rx_bytes"] == 1000
        assert monitoring.ingest_state["counters"]["eth0"] == [1000, 0]

    def test_resent_document_is_not_double_counted(self, device, post_document, admin_client):
        sent = [(0, 1000), (10, 1500), (20, 1800)]
        for minute, rx in sent:
            post_document(device, document(rx=rx), time=minutes(minute))
        count = Point.objects.count()
        post_document(device, document(rx=1500), time=minutes(10))  # the agent did not see the 200: resends
        post_document(device, document(rx=1800), time=minutes(20))
        assert Point.objects.count() == count
        body = charts_of(admin_client, device)
        assert trace(chart(body, "Traffic: eth0"), "download") == [1000, 500, 300, None, None, None]
        # the next document still counts from the newest counters
        post_document(device, document(rx=2000), time=minutes(30))
        assert trace(chart(charts_of(admin_client, device), "Traffic: eth0"), "download")[3] == 200

    def test_without_time_uses_server_time_and_sets_status(self, device, post_document, admin_client):
        doc = document(rx=10)
        assert post_document(device, doc).status_code == 200
        monitoring = DeviceMonitoring.objects.get(device=device)
        assert monitoring.status_data == doc and monitoring.last_data_time is not None
        body = charts_of(admin_client, device, "time=1d&status=true")
        assert body["data"] == doc and len(body["x"]) in (144, 145)
        assert body["monitoring"]["status"] == "ok"
        assert {m["name"]: m["is_healthy"] for m in body["related_metrics"]} == {
            "cpu": True,
            "data_collected": True,
            "disk": True,
            "memory": True,
        }
        assert "data" not in charts_of(admin_client, device, "time=1d")

    def test_device_key_reads_its_own_charts(self, device, post_document, api_client, organization):
        post_document(device, document(rx=10), time=minutes(0))
        response = api_client.get(f"/api/v1/monitoring/device/{device.pk}/?key={device.key}&{RANGE}&status=true")
        assert response.status_code == 200 and response.json()["id"] == str(device.pk)
        other = make_device(organization)
        assert api_client.get(f"/api/v1/monitoring/device/{other.pk}/?key={device.key}").status_code == 403


class TestIngestRefusals:
    def assert_error(self, response, code):
        assert response.status_code == code, response.content
        return response.json()["error"]

    @pytest.mark.parametrize(
        ("mutate", "field"),
        [
            (lambda d: d.pop("type"), "body"),
            (lambda d: d.update(type="DeviceConfiguration"), "body.type"),
            (lambda d: d["interfaces"][0]["statistics"].update(rx_bytes="many"),
             "body.interfaces[0].statistics.rx_bytes"),
            (lambda d: d["resources"].update(load=[0.1]), "body.resources.load"),
            (lambda d: d["interfaces"][1]["wireless"]["clients"].append({"mac": "nope"}),
             "body.interfaces[1].wireless.clients[0].mac"),
        ],
    )  # fmt: skip
    def test_invalid_document_is_400_naming_the_path_and_stores_nothing(self, device, post_document, mutate, field):
        doc = document(rx=100)
        mutate(doc)
        error = self.assert_error(post_document(device, doc, time=minutes(0)), 400)
        assert error["details"][0]["field"] == field
        assert field in error["message"]
        assert not Point.objects.exists() and not DeviceMonitoring.objects.exists()
        assert not WifiSession.objects.exists()

    def test_malformed_json(self, device, api_client):
        response = api_client.post(
            f"/api/v1/monitoring/device/{device.pk}/?key={device.key}", "{oops", content_type="application/json"
        )
        self.assert_error(response, 400)

    @pytest.mark.parametrize("raw", ["2024-03-01 10:00:00", "32-01-2024_10:00:00.000000", "x"])
    def test_bad_time_is_400(self, device, api_client, raw):
        url = f"/api/v1/monitoring/device/{device.pk}/?key={device.key}&time={raw}"
        error = self.assert_error(api_client.post(url, document(), format="json"), 400)
        assert error["details"][0]["field"] == "query.time"
        assert not Point.objects.exists()

    def test_key_only_for_its_own_device(self, device, organization, post_document, api_client):
        other = make_device(organization)
        self.assert_error(post_document(device, document(), key=other.key), 403)
        self.assert_error(api_client.post(f"/api/v1/monitoring/device/{device.pk}/", document(), format="json"), 401)
        assert not Point.objects.exists()

    def test_unknown_and_deactivated_devices_are_404(self, device, post_document, organization):
        device.is_deactivated = True
        device.save()
        self.assert_error(post_document(device, document()), 404)

    def test_users_cannot_post_metrics(self, device, client_as):
        client, _ = client_as(Role.ORG_ADMIN)
        self.assert_error(client.post(f"/api/v1/monitoring/device/{device.pk}/", document(), format="json"), 403)

    def test_other_tenant_charts_are_404(self, client_as, other_organization, organization):
        client, _ = client_as(Role.VIEWER)
        foreign = make_device(other_organization)
        own = make_device(organization)
        self.assert_error(client.get(f"/api/v1/monitoring/device/{foreign.pk}/"), 404)
        assert client.get(f"/api/v1/monitoring/device/{own.pk}/").status_code == 200

    @pytest.mark.parametrize(
        "query",
        [
            "start=2024-03-01&end=2024-03-02 00:00:00",
            "start=2024-03-01 10:00:00",
            "start=01-03-2024 10:00:00&end=2024-03-02 00:00:00",
            "start=2024-03-02 10:00:00&end=2024-03-01 00:00:00",
            "time=2d",
        ],
    )
    def test_bad_range_is_400(self, device, admin_client, query):
        self.assert_error(admin_client.get(f"/api/v1/monitoring/device/{device.pk}/?{query}"), 400)


def test_steady_state_ingest_query_count(device, post_document, django_assert_max_num_queries):
    # live data: documents of an hour that has not closed (here the next one, so the test never straddles a close)
    live = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    post_document(device, document(rx=1, clients=["aa:bb:cc:00:00:01"]), time=live)
    # device, monitoring row (locked), metric health, one INSERT of every point, state UPDATE (+ savepoints); no
    # rollup watermark or lock: no point of the batch is in a closed hour
    with django_assert_max_num_queries(7) as captured:
        response = post_document(
            device, document(rx=2, clients=["aa:bb:cc:00:00:01"]), time=live + timedelta(minutes=5)
        )
        assert response.status_code == 200
    inserts = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 1 and inserts[0].count("),(") == 11  # all 12 points in one statement
    assert not any("rollupprogress" in q["sql"] for q in captured.captured_queries)
