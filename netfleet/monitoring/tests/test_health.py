"""Health from thresholds with tolerance (time injected through the ingest `time`), active checks against real
hosts (127.0.0.1; a network namespace the test creates and takes down), alerts delivered to a real local webhook."""

import hashlib
import hmac
import json
import os
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.test import override_settings

from netfleet.accounts.roles import Role
from netfleet.controller.factories import make_device
from netfleet.monitoring import services, tasks
from netfleet.monitoring.choices import AlertKind, MonitoringStatus
from netfleet.monitoring.models import Alert, AlertChannelSettings, AlertSettings, DeviceMonitoring, Metric, Point

from .conftest import document

pytestmark = pytest.mark.django_db

T0 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
HOT, COOL = 1.9, 0.2  # load1 on 2 CPUs: 95 % and 10 %


def at(minutes):
    return T0 + timedelta(minutes=minutes)


def status_of(device):
    return DeviceMonitoring.objects.get(device=device).status


def metric(device, key):
    return Metric.objects.get(device=device, key=key)


class TestThresholdsWithTolerance:
    def test_cpu_problem_alerts_only_after_the_tolerance_and_recovers(self, device, post_document):
        def send(minute, load):
            assert post_document(device, document(load=load), time=at(minute)).status_code == 200

        send(0, HOT)
        assert status_of(device) == MonitoringStatus.PROBLEM  # instant health
        cpu = metric(device, "cpu")
        assert (cpu.is_healthy, cpu.is_healthy_tolerant) == (False, None)
        send(20, HOT)
        send(25, COOL)  # 25 minutes over 90 %: shorter than the 30-minute tolerance, so no alert
        assert status_of(device) == MonitoringStatus.OK
        send(30, HOT)
        send(50, HOT)
        assert not Alert.objects.exists()
        send(60, HOT)  # 30 minutes since 10:30
        assert metric(device, "cpu").is_healthy_tolerant is False
        send(70, COOL)
        alerts = list(Alert.objects.order_by("time").values_list("kind", "metric_key", "time", "value"))
        assert alerts == [(AlertKind.PROBLEM, "cpu", at(60), 95.0), (AlertKind.RECOVERY, "cpu", at(70), 10.0)]
        assert status_of(device) == MonitoringStatus.OK

    def test_custom_alert_settings(self, device, post_document):
        post_document(device, document(load=COOL), time=at(0))
        AlertSettings.objects.create(metric=metric(device, "cpu"), operator=">", threshold=5, tolerance=0)
        post_document(device, document(load=COOL), time=at(5))
        assert Alert.objects.get().message == f"CPU usage of {device.name} is 10, > 5 for 0 min"

    def test_maintenance_window_silences_alerts(self, device, post_document):
        services.open_maintenance_window(device=device, minutes=60, reason="firmware upgrade", now=at(0))
        post_document(device, document(disks=[{"used_bytes": 95, "size_bytes": 100}]), time=at(10))
        assert status_of(device) == MonitoringStatus.PROBLEM and not Alert.objects.exists()
        post_document(device, document(disks=[{"used_bytes": 50, "size_bytes": 100}]), time=at(70))
        post_document(device, document(disks=[{"used_bytes": 95, "size_bytes": 100}]), time=at(80))
        assert list(Alert.objects.values_list("metric_key", "kind")) == [("disk", AlertKind.PROBLEM)]

    def test_critical_only_when_every_critical_metric_is_unhealthy(self, device, post_document):
        post_document(device, document(), time=at(0))
        monitoring = DeviceMonitoring.objects.get(device=device)
        services.evaluate_health(device=device, monitoring=monitoring, values={"ping": 0}, time=at(1))
        assert monitoring.status == MonitoringStatus.PROBLEM  # data is still collected
        services.evaluate_health(device=device, monitoring=monitoring, values={"data_collected": 0}, time=at(2))
        assert monitoring.status == MonitoringStatus.CRITICAL
        services.evaluate_health(device=device, monitoring=monitoring, values={"ping": 1}, time=at(3))
        assert monitoring.status == MonitoringStatus.PROBLEM

    def test_device_list_filters_by_status(self, client_as, organization, other_organization, post_document):
        client, _ = client_as(Role.VIEWER)
        ok, hot, never = (make_device(organization) for _ in range(3))
        foreign = make_device(other_organization)
        post_document(ok, document(load=COOL), time=at(0))
        post_document(hot, document(load=HOT), time=at(0))
        post_document(foreign, document(load=HOT), time=at(0))

        def names(query=""):
            body = client.get(f"/api/v1/monitoring/device/?{query}").json()
            assert set(body) == {"count", "next", "previous", "results"}
            return {item["name"]: item["monitoring"]["status"] for item in body["results"]}

        assert names() == {ok.name: "ok", hot.name: "problem", never.name: "unknown"}
        assert names("monitoring__status=problem") == {hot.name: "problem"}
        assert names("monitoring__status=unknown") == {never.name: "unknown"}
        assert names(f"organization={other_organization.pk}") == {}
        assert names(f"organization_slug={organization.slug}&page_size=1").keys() <= {ok.name, hot.name, never.name}
        assert client.get("/api/v1/monitoring/device/?monitoring__status=bogus").status_code == 422


class Receiver:
    """A real HTTP server on 127.0.0.1 that records webhook deliveries and answers the given statuses in turn."""

    def __init__(self, statuses=(200,)):
        self.requests, self.statuses = [], list(statuses)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/netfleet"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(statuses=(200,)):
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for server in made:
        server.close()


class TestAlertDelivery:
    SECRET = "webhook-shared-secret"

    @pytest.fixture(autouse=True)
    def _loopback_allowed(self, settings):
        # the receivers listen on 127.0.0.1, which alert webhooks may not reach by default
        blocked = settings.NETFLEET_OUTBOUND_BLOCKED_NETWORKS
        settings.NETFLEET_OUTBOUND_BLOCKED_NETWORKS = [network for network in blocked if network != "127.0.0.0/8"]

    def raise_disk_alert(self, organization, device, post_document, url):
        AlertChannelSettings.objects.create(
            organization=organization, webhook_url=url, webhook_secret=self.SECRET, email_recipients=["noc@example.com"]
        )
        post_document(device, document(disks=[{"used_bytes": 95, "size_bytes": 100}]), time=at(0))
        return Alert.objects.get()

    def test_signed_webhook_reaches_a_real_receiver(self, organization, device, post_document, receiver):
        hook = receiver()
        alert = self.raise_disk_alert(organization, device, post_document, hook.url)
        assert (alert.webhook_status, alert.email_status) == ("pending", "pending")
        tasks.deliver_alert_webhook.apply(args=[str(alert.pk)])
        [(headers, body)] = hook.requests
        expected = hmac.new(self.SECRET.encode(), f"{headers['X-Netfleet-Timestamp']}.".encode() + body, hashlib.sha256)
        assert headers["X-Netfleet-Signature"] == f"sha256={expected.hexdigest()}"
        assert headers["Content-Type"] == "application/json"
        payload = json.loads(body)
        assert payload["event"] == "monitoring.alert.problem" and payload["metric"] == "disk"
        assert (payload["value"], payload["operator"], payload["threshold"]) == (95.0, ">", 90.0)
        assert payload["device"] == {"id": str(device.pk), "name": device.name}
        assert payload["device_status"] == "problem"
        alert.refresh_from_db()
        assert (alert.webhook_status, alert.webhook_attempts) == ("delivered", 1)
        tasks.deliver_alert_webhook.apply(args=[str(alert.pk)])  # redelivery is a no-op
        assert len(hook.requests) == 1

        tasks.send_alert_email.apply(args=[str(alert.pk)])
        assert [message.to for message in mail.outbox] == [["noc@example.com"]]
        assert "Disk usage" in mail.outbox[0].subject

    @pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
    @override_settings(NETFLEET_MONITORING_WEBHOOK_RETRIES=0)
    def test_the_controllers_own_host_is_never_called(self, organization, device, post_document, receiver, host):
        hook = receiver()
        url = hook.url.replace("127.0.0.1", host)
        with override_settings(NETFLEET_OUTBOUND_BLOCKED_NETWORKS=["127.0.0.0/8", "::1/128"]):
            alert = self.raise_disk_alert(organization, device, post_document, "https://hooks.example.com/x")
            AlertChannelSettings.objects.filter(organization=organization).update(webhook_url=url)  # set when allowed
            tasks.deliver_alert_webhook.apply(args=[str(alert.pk)])
        alert.refresh_from_db()
        assert hook.requests == []
        assert alert.webhook_status == "failed" and "in the blocked network" in alert.webhook_error

    @override_settings(NETFLEET_MONITORING_WEBHOOK_RETRIES=3)
    def test_failed_deliveries_are_retried(self, organization, device, post_document, receiver):
        hook = receiver(statuses=(500, 503, 200))
        alert = self.raise_disk_alert(organization, device, post_document, hook.url)
        tasks.deliver_alert_webhook.apply(args=[str(alert.pk)])
        alert.refresh_from_db()
        assert (alert.webhook_status, alert.webhook_attempts, len(hook.requests)) == ("delivered", 3, 3)

    @override_settings(NETFLEET_MONITORING_WEBHOOK_RETRIES=1)
    def test_gives_up_after_the_retries(self, organization, device, post_document, receiver):
        hook = receiver(statuses=(500,))
        alert = self.raise_disk_alert(organization, device, post_document, hook.url)
        tasks.deliver_alert_webhook.apply(args=[str(alert.pk)])
        alert.refresh_from_db()
        assert (alert.webhook_status, alert.webhook_attempts, alert.webhook_error) == ("failed", 2, "HTTP 500")


def ping_points(device):
    return dict(Point.objects.filter(device=device, metric="ping").values_list("field", "value"))


class TestActiveChecks:
    @pytest.fixture(autouse=True)
    def _fast_ping(self, settings):
        settings.NETFLEET_MONITORING_PING_COUNT = 2
        settings.NETFLEET_MONITORING_PING_TIMEOUT = 1

    def test_ping_localhost_is_reachable(self, organization):
        device = make_device(organization, management_ip="127.0.0.1")
        assert services.run_checks(device_ids=[device.pk], now=at(0)) == 1
        points = ping_points(device)
        assert points["reachable"] == 1 and points["loss"] == 0
        assert 0 < points["rtt_min"] <= points["rtt_avg"] <= points["rtt_max"] < 100
        assert metric(device, "ping").is_healthy is True
        # never sent data, config not applied yet
        assert (metric(device, "data_collected").is_healthy, metric(device, "config_applied").is_healthy) == (
            False,
            False,
        )

    def test_host_in_a_network_namespace_then_taken_down(self, organization):
        """A host the test makes (a veth peer in its own namespace), reachable, then gone: unreachable. A blackhole
        route for the test subnet guarantees that nothing is ever sent outside once the namespace is gone."""
        if os.geteuid() != 0:
            pytest.skip("creating a network namespace needs root")
        tag = f"{os.getpid() % 10000:04d}"
        namespace, host_if, peer_if = f"nfmon{tag}", f"nfm{tag}h", f"nfm{tag}n"
        octet = os.getpid() % 250
        subnet, host_ip, peer_ip = f"169.254.{octet}.0/29", f"169.254.{octet}.1", f"169.254.{octet}.2"

        def ip(*args):
            subprocess.run(["ip", *args], check=True, capture_output=True)

        ip("route", "add", "blackhole", subnet)
        try:
            ip("netns", "add", namespace)
            ip("link", "add", host_if, "type", "veth", "peer", "name", peer_if, "netns", namespace)
            ip("addr", "add", f"{host_ip}/30", "dev", host_if)
            ip("link", "set", host_if, "up")
            ip("-n", namespace, "addr", "add", f"{peer_ip}/30", "dev", peer_if)
            ip("-n", namespace, "link", "set", peer_if, "up")
            device = make_device(organization, management_ip=peer_ip)
            services.run_checks(device_ids=[device.pk], now=at(0))
            assert ping_points(device)["reachable"] == 1
            ip("netns", "delete", namespace)  # the peer and its veth pair disappear...
            # ...but the kernel tears the namespace down asynchronously: remove our end too and wait for it
            subprocess.run(["ip", "link", "delete", host_if], capture_output=True)
            for _ in range(50):
                if subprocess.run(["ip", "link", "show", host_if], capture_output=True).returncode != 0:
                    break
                time.sleep(0.1)
            Point.objects.all().delete()
            services.run_checks(device_ids=[device.pk], now=at(5))
            assert ping_points(device) == {"reachable": 0, "loss": 100}
            ping = metric(device, "ping")
            assert (ping.is_healthy, ping.crossed_since) == (False, at(5))
            assert status_of(device) == MonitoringStatus.CRITICAL  # and no data was ever collected
        finally:
            subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)
            subprocess.run(["ip", "link", "delete", host_if], capture_output=True)
            subprocess.run(["ip", "route", "del", "blackhole", subnet], capture_output=True)

    def test_checks_are_chunked(self, organization, settings, monkeypatch):
        settings.NETFLEET_MONITORING_CHECK_CHUNK = 2
        for _ in range(5):
            make_device(organization)
        sent = []
        monkeypatch.setattr(tasks.run_checks_chunk, "delay", sent.append)
        tasks.run_checks.apply()
        assert [len(chunk) for chunk in sent] == [2, 2, 1]
