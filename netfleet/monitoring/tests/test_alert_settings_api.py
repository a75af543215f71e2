"""Alert configuration over HTTP: alert channels per organization, per-metric alert rules of a device, maintenance
windows; tenancy, roles and validation; and proof that what is configured changes what ingest does."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from netfleet.accounts.roles import Role
from netfleet.controller.factories import make_device
from netfleet.monitoring import services
from netfleet.monitoring.models import (
    Alert,
    AlertChannelSettings,
    AlertSettings,
    DeviceMonitoring,
    MaintenanceWindow,
    Metric,
)

from .conftest import document

pytestmark = pytest.mark.django_db

CHANNELS = "/api/v1/monitoring/alert-channel/"
WINDOWS = "/api/v1/monitoring/maintenance-window/"
WRITE_DENIED = "Permission denied: requires 'monitoring:write'"
T0 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
FULL_DISK, HALF_DISK = [{"used_bytes": 95, "size_bytes": 100}], [{"used_bytes": 50, "size_bytes": 100}]
DEFAULTS = [
    ("ping", "<", 1.0, 30),
    ("config_applied", "<", 1.0, 10),
    ("data_collected", "<", 1.0, 30),
    ("cpu", ">", 90.0, 30),
    ("memory", ">", 95.0, 30),
    ("disk", ">", 90.0, 0),
]


def at(minutes):
    return T0 + timedelta(minutes=minutes)


def iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


def rules_url(device, metric=None):
    return f"/api/v1/monitoring/device/{device.pk}/alert-settings/" + (f"{metric}/" if metric else "")


def error_of(response, code):
    assert response.status_code == code, response.content
    error = response.json()["error"]
    assert error["code"] == code
    return error


def fields_of(error):
    return {item["field"]: item["type"] for item in error.get("details", [])}


def results(response):
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    return body["results"]


@pytest.fixture
def operator(client_as):
    return client_as(Role.OPERATOR)[0]


@pytest.fixture
def viewer(client_as):
    return client_as(Role.VIEWER)[0]


# --- alert channels ----------------------------------------------------------------------------------------------


class TestAlertChannels:
    PAYLOAD = {
        "alerts_enabled": True,
        "email_recipients": ["noc@example.com", "oncall@example.com"],
        "webhook_url": "https://hooks.example.com/netfleet",
        "webhook_secret": "s3cret-key",
    }

    def create(self, client, organization, **changes):
        return client.post(CHANNELS, {**self.PAYLOAD, "organization": str(organization.pk), **changes}, format="json")

    def test_crud(self, operator, organization):
        response = self.create(operator, organization)
        assert response.status_code == 201, response.content
        created = response.json()
        assert created["organization"] == str(organization.pk)
        assert created["email_recipients"] == ["noc@example.com", "oncall@example.com"]
        assert created["webhook_url"] == "https://hooks.example.com/netfleet"
        assert created["has_webhook_secret"] is True and "webhook_secret" not in created
        url = f"{CHANNELS}{created['id']}/"

        assert [item["id"] for item in results(operator.get(CHANNELS))] == [created["id"]]
        assert operator.get(url).json() == created

        # an update that leaves the secret out keeps it
        response = operator.patch(url, {"alerts_enabled": False, "email_recipients": []}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["alerts_enabled"] is False and response.json()["has_webhook_secret"] is True
        assert AlertChannelSettings.objects.get().webhook_secret == "s3cret-key"

        put = {"organization": str(organization.pk), "alerts_enabled": True, "webhook_url": "http://10.0.0.9:9/h"}
        response = operator.put(url, put, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["webhook_url"] == "http://10.0.0.9:9/h" and response.json()["has_webhook_secret"]

        # an empty secret clears it
        assert operator.patch(url, {"webhook_secret": ""}, format="json").json()["has_webhook_secret"] is False
        assert AlertChannelSettings.objects.get().webhook_secret == ""

        assert operator.delete(url).status_code == 204
        assert not AlertChannelSettings.objects.exists()
        error_of(operator.get(url), 404)

    def test_secret_is_write_only_and_encrypted_at_rest(self, operator, organization):
        created = self.create(operator, organization).json()
        for response in (operator.get(CHANNELS), operator.get(f"{CHANNELS}{created['id']}/")):
            assert b"s3cret-key" not in response.content
        with connection.cursor() as cursor:
            cursor.execute("SELECT webhook_secret FROM monitoring_alertchannelsettings")
            (raw,) = cursor.fetchone()
        assert raw.startswith("gAAAA") and "s3cret-key" not in raw  # a Fernet token
        assert AlertChannelSettings.objects.get().webhook_secret == "s3cret-key"  # what signs the webhooks

    def test_one_per_organization_is_409(self, operator, organization):
        assert self.create(operator, organization).status_code == 201
        error = error_of(self.create(operator, organization, webhook_url=""), 409)
        assert error["message"].startswith("Conflict")
        assert AlertChannelSettings.objects.count() == 1

    @pytest.mark.parametrize(
        ("changes", "field", "kind"),
        [
            ({"email_recipients": ["noc@example.com", "not-an-email"]}, "body.email_recipients[1]", "invalid"),
            ({"email_recipients": "noc@example.com"}, "body.email_recipients", "not_a_list"),
            ({"webhook_url": "not a url"}, "body.webhook_url", "invalid"),
            ({"webhook_url": "ftp://files.example.com/hook"}, "body.webhook_url", "invalid"),
            # the controller's own host and the cloud's metadata service (NETFLEET_OUTBOUND_BLOCKED_NETWORKS)
            ({"webhook_url": "http://127.0.0.1:6379/"}, "body.webhook_url", "invalid"),
            ({"webhook_url": "http://169.254.169.254/latest/meta-data/"}, "body.webhook_url", "invalid"),
            ({"webhook_url": "http://[::ffff:127.0.0.1]:8000/"}, "body.webhook_url", "invalid"),
            ({"alerts_enabled": "sometimes"}, "body.alerts_enabled", "invalid"),
        ],
    )
    def test_bad_input_is_422(self, operator, organization, changes, field, kind):
        error = error_of(self.create(operator, organization, **changes), 422)
        assert fields_of(error) == {field: kind}
        assert not AlertChannelSettings.objects.exists()

    def test_model_rejects_bad_addresses_outside_the_api_too(self, organization):
        channels = AlertChannelSettings(organization=organization, email_recipients=["x@"], webhook_url="ftp://h/x")
        with pytest.raises(ValidationError) as raised:
            channels.full_clean()
        assert set(raised.value.message_dict) == {"email_recipients", "webhook_url"}

    def test_filters(self, admin_client, organization, other_organization):
        mine = AlertChannelSettings.objects.create(organization=organization)
        theirs = AlertChannelSettings.objects.create(organization=other_organization, alerts_enabled=False)

        def ids(query):
            return [item["id"] for item in results(admin_client.get(f"{CHANNELS}?{query}"))]

        assert sorted(ids("")) == sorted([str(mine.pk), str(theirs.pk)])
        assert ids(f"organization={organization.pk}") == [str(mine.pk)]
        assert ids(f"organization_slug={other_organization.slug}") == [str(theirs.pk)]
        assert ids("alerts_enabled=false") == [str(theirs.pk)]
        error = error_of(admin_client.get(f"{CHANNELS}?organization=nope"), 422)
        assert "query.organization" in fields_of(error)

    def test_another_organizations_channels_are_404(self, operator, organization, other_organization):
        theirs = AlertChannelSettings.objects.create(organization=other_organization, webhook_url="https://x.test/")
        assert results(operator.get(CHANNELS)) == []
        url = f"{CHANNELS}{theirs.pk}/"
        error_of(operator.get(url), 404)
        error_of(operator.patch(url, {"alerts_enabled": False}, format="json"), 404)
        error_of(operator.delete(url), 404)
        # nor can one be created for the other organization: its id "does not exist" for this caller
        error = error_of(self.create(operator, other_organization), 422)
        assert fields_of(error) == {"body.organization": "does_not_exist"}
        theirs.refresh_from_db()
        assert theirs.alerts_enabled is True

    def test_viewer_reads_but_cannot_write(self, viewer, organization):
        channels = AlertChannelSettings.objects.create(organization=organization, webhook_secret="keep")
        url = f"{CHANNELS}{channels.pk}/"
        assert viewer.get(url).json()["has_webhook_secret"] is True
        assert len(results(viewer.get(CHANNELS))) == 1
        assert error_of(viewer.patch(url, {"alerts_enabled": False}, format="json"), 403)["message"] == WRITE_DENIED
        error_of(viewer.delete(url), 403)
        AlertChannelSettings.objects.all().delete()
        error_of(self.create(viewer, organization), 403)
        assert not AlertChannelSettings.objects.exists()


# --- alert rules of a device's metrics ---------------------------------------------------------------------------


class TestAlertRules:
    def test_metrics_without_settings_show_the_defaults(self, viewer, device):
        listed = results(viewer.get(rules_url(device)))
        assert [(r["metric"], r["operator"], r["threshold"], r["tolerance"]) for r in listed] == DEFAULTS
        assert all(r["is_active"] and r["is_default"] for r in listed)
        assert viewer.get(rules_url(device, "cpu")).json() == listed[3]

    def test_set_patch_and_reset_a_rule(self, operator, device):
        url = rules_url(device, "cpu")
        response = operator.put(url, {"operator": ">", "threshold": 50, "tolerance": 5}, format="json")
        assert response.status_code == 200, response.content
        expected = {"metric": "cpu", "operator": ">", "threshold": 50.0, "tolerance": 5, "is_active": True,
                    "is_default": False}  # fmt: skip
        assert response.json() == expected
        stored = AlertSettings.objects.get(metric__device=device, metric__key="cpu")
        assert (stored.operator, stored.threshold, stored.tolerance) == (">", 50, 5)
        assert operator.get(url).json() == expected

        response = operator.patch(url, {"threshold": 60, "is_active": False}, format="json")
        assert response.json() == {**expected, "threshold": 60.0, "is_active": False}
        listed = {r["metric"]: r for r in results(operator.get(rules_url(device)))}
        assert listed["cpu"]["threshold"] == 60.0 and not listed["cpu"]["is_default"]
        assert listed["memory"]["is_default"]

        assert operator.delete(url).status_code == 204
        assert not AlertSettings.objects.exists()
        assert operator.get(url).json()["is_default"] is True
        assert operator.delete(url).status_code == 204  # already the default: nothing to reset

    def test_patch_of_a_default_rule_keeps_the_other_defaults(self, operator, device):
        response = operator.patch(rules_url(device, "memory"), {"threshold": 80}, format="json")
        assert response.status_code == 200, response.content
        assert response.json() == {"metric": "memory", "operator": ">", "threshold": 80.0, "tolerance": 30,
                                   "is_active": True, "is_default": False}  # fmt: skip
        # the metric had never been seen: it now exists, with no health yet
        metric = Metric.objects.get(device=device, key="memory")
        assert metric.is_healthy is None and metric.alert_settings.threshold == 80

    @pytest.mark.parametrize(
        ("payload", "field", "kind"),
        [
            ({"operator": "=", "threshold": 1}, "body.operator", "invalid_choice"),
            ({"operator": ">=", "threshold": 1}, "body.operator", "invalid_choice"),
            ({"operator": ">", "threshold": "high"}, "body.threshold", "invalid"),
            ({"operator": ">", "threshold": "nan"}, "body.threshold", "invalid"),
            ({"operator": ">", "threshold": 1, "tolerance": -1}, "body.tolerance", "min_value"),
            ({"threshold": 1}, "body.operator", "required"),
        ],
    )
    def test_bad_input_is_422(self, operator, device, payload, field, kind):
        error = error_of(operator.put(rules_url(device, "cpu"), payload, format="json"), 422)
        assert fields_of(error) == {field: kind}
        assert not AlertSettings.objects.exists() and not Metric.objects.exists()

    def test_unknown_metric_and_creation_are_refused(self, operator, device):
        error_of(operator.get(rules_url(device, "temperature")), 404)
        error_of(operator.post(rules_url(device), {"operator": ">", "threshold": 1}, format="json"), 405)

    def test_another_organizations_device_is_404(self, operator, viewer, other_organization):
        theirs = make_device(other_organization)
        for client in (operator, viewer):
            error_of(client.get(rules_url(theirs)), 404)
            error_of(client.get(rules_url(theirs, "cpu")), 404)
        error_of(operator.put(rules_url(theirs, "cpu"), {"operator": ">", "threshold": 1}, format="json"), 404)
        error_of(operator.delete(rules_url(theirs, "cpu")), 404)
        error_of(operator.get(rules_url(theirs).replace(str(theirs.pk), "not-a-uuid")), 404)
        assert not Metric.objects.exists()

    def test_viewer_cannot_change_rules(self, viewer, device):
        response = viewer.put(rules_url(device, "cpu"), {"operator": ">", "threshold": 1}, format="json")
        assert error_of(response, 403)["message"] == WRITE_DENIED
        error_of(viewer.delete(rules_url(device, "cpu")), 403)
        assert not AlertSettings.objects.exists()

    def test_list_queries_do_not_grow_with_custom_rules(self, operator, device):
        with CaptureQueriesContext(connection) as plain:
            results(operator.get(rules_url(device)))
        for key in ("cpu", "memory", "disk", "ping"):
            operator.put(rules_url(device, key), {"operator": ">", "threshold": 1}, format="json")
        with CaptureQueriesContext(connection) as custom:
            assert sum(not r["is_default"] for r in results(operator.get(rules_url(device)))) == 4
        assert len(custom) == len(plain)


# --- maintenance windows -----------------------------------------------------------------------------------------


class TestMaintenanceWindows:
    def payload(self, device, starts, ends, **changes):
        return {"device": str(device.pk), "starts": iso(starts), "ends": iso(ends), "reason": "swap PSU", **changes}

    def test_crud(self, operator, device):
        response = operator.post(WINDOWS, self.payload(device, at(0), at(60)), format="json")
        assert response.status_code == 201, response.content
        created = response.json()
        assert created["device"] == str(device.pk) and created["device_name"] == device.name
        assert created["organization"] == str(device.organization_id)
        assert (created["starts"], created["ends"], created["reason"]) == (iso(at(0)), iso(at(60)), "swap PSU")
        assert created["is_active"] is False  # 2024 is over
        url = f"{WINDOWS}{created['id']}/"
        assert operator.get(url).json() == created
        assert [item["id"] for item in results(operator.get(WINDOWS))] == [created["id"]]

        response = operator.patch(url, {"ends": iso(at(90)), "reason": "longer"}, format="json")
        assert response.status_code == 200, response.content
        assert (response.json()["ends"], response.json()["reason"]) == (iso(at(90)), "longer")
        response = operator.put(url, self.payload(device, at(10), at(20), reason=""), format="json")
        assert response.status_code == 200, response.content
        window = MaintenanceWindow.objects.get()
        assert (window.starts, window.ends, window.reason) == (at(10), at(20), "")

        assert operator.delete(url).status_code == 204
        assert not MaintenanceWindow.objects.exists()

    @pytest.mark.parametrize("minutes", [0, -30])
    def test_must_end_after_it_starts(self, operator, device, minutes):
        error = error_of(operator.post(WINDOWS, self.payload(device, at(0), at(minutes)), format="json"), 422)
        assert fields_of(error) == {"body.ends": "invalid"}
        window = services.open_maintenance_window(device=device, minutes=30, now=at(0))
        error = error_of(operator.patch(f"{WINDOWS}{window.pk}/", {"starts": iso(at(45))}, format="json"), 422)
        assert fields_of(error) == {"body.ends": "invalid"}
        error = error_of(operator.post(WINDOWS, {"device": str(device.pk), "starts": "soon"}, format="json"), 422)
        assert fields_of(error) == {"body.starts": "invalid", "body.ends": "required"}

    def test_filters(self, viewer, organization, other_organization):
        now = timezone.now()
        first, second = make_device(organization), make_device(organization)
        current = MaintenanceWindow.objects.create(device=first, starts=now - HOUR, ends=now + HOUR)
        past = MaintenanceWindow.objects.create(device=first, starts=now - 3 * HOUR, ends=now - 2 * HOUR)
        future = MaintenanceWindow.objects.create(device=second, starts=now + HOUR, ends=now + 2 * HOUR)
        MaintenanceWindow.objects.create(device=make_device(other_organization), starts=now - HOUR, ends=now + HOUR)

        def ids(query=""):
            listed = results(viewer.get(f"{WINDOWS}?{query}"))
            return sorted(item["id"] for item in listed)

        def of(*windows):
            return sorted(str(window.pk) for window in windows)

        assert ids() == of(current, past, future)  # not the other organization's
        assert ids(f"device={first.pk}") == of(current, past)
        assert ids("active=true") == of(current)
        assert ids("active=false") == of(past, future)
        assert ids(f"organization={organization.pk}") == of(current, past, future)
        assert ids(f"organization_slug={other_organization.slug}") == []
        assert viewer.get(f"{WINDOWS}{current.pk}/").json()["is_active"] is True
        body = viewer.get(f"{WINDOWS}?page_size=2&page=2").json()
        assert body["count"] == 3 and len(body["results"]) == 1 and body["next"] is None

    def test_another_organizations_windows_and_devices(self, operator, other_organization):
        theirs = make_device(other_organization)
        window = services.open_maintenance_window(device=theirs, minutes=30, now=at(0))
        url = f"{WINDOWS}{window.pk}/"
        error_of(operator.get(url), 404)
        error_of(operator.patch(url, {"reason": "mine now"}, format="json"), 404)
        error_of(operator.delete(url), 404)
        error = error_of(operator.post(WINDOWS, self.payload(theirs, at(0), at(60)), format="json"), 422)
        assert fields_of(error) == {"body.device": "does_not_exist"}
        assert MaintenanceWindow.objects.get().reason == ""

    @pytest.mark.parametrize(
        ("role", "status"),
        [(Role.VIEWER, 403), (Role.OPERATOR, 201), (Role.NETWORK_ADMIN, 201), (Role.ORG_ADMIN, 201)],
    )
    def test_who_may_open_one(self, client_as, device, role, status):
        client, _ = client_as(role)
        response = client.post(WINDOWS, self.payload(device, at(0), at(60)), format="json")
        assert response.status_code == status, response.content
        if status == 403:
            assert response.json()["error"]["message"] == WRITE_DENIED
        assert MaintenanceWindow.objects.count() == (status == 201)


# --- configuration changes behaviour -----------------------------------------------------------------------------


class TestConfigurationApplies:
    def test_threshold_set_over_the_api_decides_health(self, operator, device):
        monitoring, _ = DeviceMonitoring.objects.get_or_create(device=device)
        services.evaluate_health(device=device, monitoring=monitoring, values={"cpu": 40}, time=at(0))
        assert Metric.objects.get(device=device, key="cpu").is_healthy is True  # default: > 90
        rule = {"operator": ">", "threshold": 30, "tolerance": 0}
        response = operator.put(rules_url(device, "cpu"), rule, format="json")
        assert response.status_code == 200, response.content
        services.evaluate_health(device=device, monitoring=monitoring, values={"cpu": 40}, time=at(5))
        cpu = Metric.objects.get(device=device, key="cpu")
        assert (cpu.is_healthy, cpu.is_healthy_tolerant) == (False, False)
        assert monitoring.status == "problem"
        alert = Alert.objects.get()
        assert (alert.metric_key, alert.kind, alert.operator, alert.threshold) == ("cpu", "problem", ">", 30)

        operator.delete(rules_url(device, "cpu"))  # back to the default rule: 40 is healthy again
        services.evaluate_health(device=device, monitoring=monitoring, values={"cpu": 40}, time=at(10))
        assert Metric.objects.get(device=device, key="cpu").is_healthy is True
        assert list(Alert.objects.order_by("time").values_list("kind", flat=True)) == ["problem", "recovery"]

    def test_inactive_rule_tracks_health_without_alerts(self, operator, device, post_document):
        operator.put(rules_url(device, "disk"), {"operator": ">", "threshold": 90, "is_active": False}, format="json")
        assert post_document(device, document(disks=FULL_DISK), time=at(0)).status_code == 200
        assert Metric.objects.get(device=device, key="disk").is_healthy is False
        assert not Alert.objects.exists()

    def test_alerts_disabled_over_the_api_store_no_alert(self, operator, organization, device, post_document):
        response = operator.post(CHANNELS, {"organization": str(organization.pk), "alerts_enabled": False})
        assert response.status_code == 201, response.content
        post_document(device, document(disks=FULL_DISK), time=at(0))
        assert DeviceMonitoring.objects.get(device=device).status == "problem"
        assert not Alert.objects.exists()

        operator.patch(f"{CHANNELS}{response.json()['id']}/", {"alerts_enabled": True}, format="json")
        post_document(device, document(disks=HALF_DISK), time=at(10))
        assert not Alert.objects.exists()  # the problem was never announced: no recovery either
        post_document(device, document(disks=FULL_DISK), time=at(20))
        assert list(Alert.objects.values_list("metric_key", "kind")) == [("disk", "problem")]

    def test_maintenance_window_opened_over_the_api_silences_alerts(self, operator, device, post_document):
        other = make_device(device.organization)
        payload = {"device": str(device.pk), "starts": iso(at(0)), "ends": iso(at(60))}
        assert operator.post(WINDOWS, payload, format="json").status_code == 201
        post_document(device, document(disks=FULL_DISK), time=at(10))
        post_document(other, document(disks=FULL_DISK), time=at(10))
        assert DeviceMonitoring.objects.get(device=device).status == "problem"
        assert list(Alert.objects.values_list("device", flat=True)) == [other.pk]  # only the other device alerts

        post_document(device, document(disks=HALF_DISK), time=at(70))
        post_document(device, document(disks=FULL_DISK), time=at(80))  # the window is over
        assert Alert.objects.filter(device=device).get().time == at(80)
