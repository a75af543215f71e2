"""Monitoring services: health and alerts, WiFi sessions, active checks, retention (metric ingest: ingest.py)."""

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import timedelta

import orjson
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from netfleet.controller.models import Device
from netfleet.core import outbound

from .checks import ping_hosts
from .choices import AlertKind, AlertOperator, DeliveryStatus, HealthMetric, MonitoringStatus
from .models import Alert, AlertChannelSettings, DeviceMonitoring, MaintenanceWindow, Metric, WifiSession
from .timeseries import get_backend, to_us

logger = logging.getLogger("netfleet.monitoring")


# --- health ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertRule:
    operator: str
    threshold: float
    tolerance: int  # minutes
    is_active: bool = True

    def crossed_by(self, value):
        return value < self.threshold if self.operator == AlertOperator.LESS_THAN else value > self.threshold


# The reference system's defaults. ping and data_collected are the critical metrics.
DEFAULT_RULES = {
    HealthMetric.PING: AlertRule("<", 1, 30),
    HealthMetric.DATA_COLLECTED: AlertRule("<", 1, 30),
    HealthMetric.CONFIG_APPLIED: AlertRule("<", 1, 10),
    HealthMetric.CPU: AlertRule(">", 90, 30),
    HealthMetric.MEMORY: AlertRule(">", 95, 30),
    HealthMetric.DISK: AlertRule(">", 90, 0),
}
CRITICAL_METRICS = (HealthMetric.PING, HealthMetric.DATA_COLLECTED)


def rule_for(metric):
    custom = getattr(metric, "alert_settings", None) if not metric._state.adding else None  # new: no query
    if custom is not None:
        return AlertRule(custom.operator, custom.threshold, custom.tolerance, custom.is_active)
    return DEFAULT_RULES[metric.key]


def device_status(device, metrics):
    """`ok` when no metric is unhealthy, `problem` when any is, `critical` when every critical metric with a
    known health is unhealthy; `unknown` before any health is known, `deactivated` for deactivated devices."""
    if device.is_deactivated:
        return MonitoringStatus.DEACTIVATED
    known = [metric for metric in metrics if metric.is_healthy is not None]
    if not known:
        return MonitoringStatus.UNKNOWN
    critical = [metric for metric in known if metric.key in CRITICAL_METRICS]
    if critical and not any(metric.is_healthy for metric in critical):
        return MonitoringStatus.CRITICAL
    if not all(metric.is_healthy for metric in known):
        return MonitoringStatus.PROBLEM
    return MonitoringStatus.OK


def metrics_by_device(device_ids):
    """{device_id: {key: Metric}} with their alert settings, in one query."""
    found = {device_id: {} for device_id in device_ids}
    for metric in Metric.objects.filter(device_id__in=device_ids).select_related("alert_settings"):
        found[metric.device_id][metric.key] = metric
    return found


def evaluate_health(*, device, monitoring, values, time, metrics=None, created=None):
    """Apply metric values observed at `time` ({key: value}) to the device's metric health, then its status.

    Instant health follows each value. Tolerance-aware health turns unhealthy only once the threshold has been
    crossed without interruption for the rule's tolerance, and healthy again as soon as a value is back within it
    (so flapping shorter than the tolerance never alerts). Each tolerance-aware change raises an alert. Writes only
    what changed; the caller saves `monitoring` (returned: whether its status changed). `metrics`: the device's
    {key: Metric} when the caller loaded them already (updated in place). `created`: a list that collects new
    metrics for the caller to insert in bulk (else each is saved here)."""
    if metrics is None:
        metrics = metrics_by_device([device.pk])[device.pk]
    transitions = []
    for key, value in values.items():
        metric = metrics.get(key) or Metric(device=device, key=key)
        rule = rule_for(metric)
        before = (metric.is_healthy, metric.is_healthy_tolerant, metric.crossed_since)
        if rule.crossed_by(value):
            metric.crossed_since = metric.crossed_since or time
            metric.is_healthy = False
            if time - metric.crossed_since >= timedelta(minutes=rule.tolerance):
                metric.is_healthy_tolerant = False
        else:
            metric.crossed_since, metric.is_healthy, metric.is_healthy_tolerant = None, True, True
        if (metric.is_healthy, metric.is_healthy_tolerant, metric.crossed_since) == before and not metric._state.adding:
            continue
        if metric.is_healthy_tolerant is False and before[1] is not False:
            transitions.append((metric, rule, value, AlertKind.PROBLEM))
        elif metric.is_healthy_tolerant is True and before[1] is False:
            transitions.append((metric, rule, value, AlertKind.RECOVERY))
        if before[:2] != (metric.is_healthy, metric.is_healthy_tolerant):
            metric.changed = time
        if created is not None and metric._state.adding:
            if metric not in created:  # a device's second document in the same batch
                created.append(metric)
        else:
            metric.save()
        metrics[key] = metric
    status = device_status(device, metrics.values())
    changed = status != monitoring.status
    if changed:
        monitoring.status, monitoring.status_changed = status, time
    for metric, rule, value, kind in transitions:
        raise_alert(device=device, metric=metric, rule=rule, value=value, kind=kind, status=status, time=time)
    return changed


# --- alerts ----------------------------------------------------------------------------------------------


def in_maintenance(device, time):
    return MaintenanceWindow.objects.filter(device=device, starts__lte=time, ends__gt=time).exists()


def open_maintenance_window(*, device, minutes, reason="", now=None):
    """Silence a device's alerts for `minutes` from now (a firmware upgrade calls this before flashing)."""
    now = now or timezone.now()
    window = MaintenanceWindow(device=device, starts=now, ends=now + timedelta(minutes=minutes), reason=reason)
    window.validated_save()
    return window


def alert_message(device, metric, rule, value, kind):
    label = HealthMetric(metric.key).label
    if kind == AlertKind.PROBLEM:
        return f"{label} of {device.name} is {value:g}, {rule.operator} {rule.threshold:g} for {rule.tolerance} min"
    return f"{label} of {device.name} is back to normal ({value:g})"


def raise_alert(*, device, metric, rule, value, kind, status, time):
    """Store an alert and queue its email and webhook. None during a maintenance window, for inactive rules, for
    organizations that disabled alerts, and for a recovery whose problem was not announced."""
    if not rule.is_active or in_maintenance(device, time):
        return None
    if kind == AlertKind.RECOVERY:
        last = Alert.objects.filter(device=device, metric_key=metric.key).order_by("-time").first()
        if last is None or last.kind != AlertKind.PROBLEM:
            return None  # the problem was never announced (maintenance, alerts off): nothing to recover from
    channels = AlertChannelSettings.objects.filter(organization_id=device.organization_id).first()
    if channels is not None and not channels.alerts_enabled:
        return None
    alert = Alert(
        device=device,
        metric_key=metric.key,
        kind=kind,
        message=alert_message(device, metric, rule, value, kind)[:255],
        value=value,
        operator=rule.operator,
        threshold=rule.threshold,
        device_status=status,
        time=time,
        email_status=DeliveryStatus.PENDING if channels and channels.email_recipients else DeliveryStatus.SKIPPED,
        webhook_status=DeliveryStatus.PENDING if channels and channels.webhook_url else DeliveryStatus.SKIPPED,
    )
    alert.save()
    from . import tasks

    if alert.email_status == DeliveryStatus.PENDING:
        transaction.on_commit(lambda: tasks.send_alert_email.delay(str(alert.pk)))
    if alert.webhook_status == DeliveryStatus.PENDING:
        transaction.on_commit(lambda: tasks.deliver_alert_webhook.delay(str(alert.pk)))
    return alert


def alert_payload(alert):
    return {
        "event": f"monitoring.alert.{alert.kind}",
        "id": str(alert.pk),
        "time": alert.time.isoformat(),
        "device": {"id": str(alert.device_id), "name": alert.device.name},
        "organization": str(alert.device.organization_id),
        "metric": alert.metric_key,
        "kind": alert.kind,
        "message": alert.message,
        "value": alert.value,
        "operator": alert.operator,
        "threshold": alert.threshold,
        "device_status": alert.device_status,
    }


def sign_webhook(secret, timestamp, body):
    """HMAC-SHA256 over `<timestamp>.<body>` (the timestamp binds the signature to one delivery time)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookFailed(Exception):
    pass


def deliver_alert_webhook(*, alert, now=None):
    """POST the alert as JSON, signed in `X-Netfleet-Signature`; raises WebhookFailed (the task retries)."""
    channels = AlertChannelSettings.objects.filter(organization_id=alert.device.organization_id).first()
    if channels is None or not channels.webhook_url:
        Alert.objects.filter(pk=alert.pk).update(webhook_status=DeliveryStatus.SKIPPED)
        return
    body = orjson.dumps(alert_payload(alert), option=orjson.OPT_SORT_KEYS)
    timestamp = str(int((now or timezone.now()).timestamp()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "netfleet-webhook/1",
        "X-Netfleet-Event": f"monitoring.alert.{alert.kind}",
        "X-Netfleet-Delivery": str(alert.pk),
        "X-Netfleet-Timestamp": timestamp,
        "X-Netfleet-Signature": sign_webhook(channels.webhook_secret, timestamp, body),
    }
    attempts = alert.webhook_attempts + 1
    try:
        status = outbound.post(
            channels.webhook_url, content=body, headers=headers, timeout=settings.NETFLEET_MONITORING_WEBHOOK_TIMEOUT
        )
        if status >= 300:
            raise WebhookFailed(f"HTTP {status}")
    except (*outbound.DELIVERY_ERRORS, WebhookFailed) as exc:
        Alert.objects.filter(pk=alert.pk).update(webhook_attempts=attempts, webhook_error=str(exc)[:255])
        raise WebhookFailed(str(exc)) from exc
    Alert.objects.filter(pk=alert.pk).update(
        webhook_attempts=attempts, webhook_status=DeliveryStatus.DELIVERED, webhook_error=""
    )


def give_up_webhook(*, alert_id):
    Alert.objects.filter(pk=alert_id).update(webhook_status=DeliveryStatus.FAILED)


def send_alert_email(*, alert):
    channels = AlertChannelSettings.objects.filter(organization_id=alert.device.organization_id).first()
    if channels is None or not channels.email_recipients:
        return
    send_mail(
        subject=f"[netfleet] {alert.message}"[:200],
        message=orjson.dumps(alert_payload(alert), option=orjson.OPT_INDENT_2).decode(),
        from_email=settings.NETFLEET_MONITORING_ALERT_EMAIL_FROM,
        recipient_list=channels.email_recipients,
    )
    Alert.objects.filter(pk=alert.pk).update(email_status=DeliveryStatus.DELIVERED)


# --- WiFi sessions -------------------------------------------------------------------------------------


def update_wifi_sessions(*, device, previous, seen, time):
    """Open a session for each client MAC that appeared on a wireless interface, close those that disappeared.
    `previous`: {interface: [macs]} of the document before; `seen`: what netjson.derive found. Returns the new
    {interface: [macs]}. No query when nothing changed."""
    current = {name: sorted(info["clients"]) for name, info in seen.items()}
    if current == previous:
        return previous
    opened, closed = [], Q()
    for name in sorted(set(previous) | set(current)):
        old, new = set(previous.get(name, ())), set(current.get(name, ()))
        info = seen.get(name, {})
        for mac in sorted(new - old):
            client = info["clients"][mac]
            opened.append(
                WifiSession(
                    device=device,
                    interface_name=name,
                    ssid=(info.get("ssid") or "")[:64],
                    mac_address=mac,
                    vendor=(client.get("vendor") or "")[:128],
                    start_time=time,
                )
            )
        for mac in old - new:
            closed |= Q(interface_name=name, mac_address=mac)
    if closed:
        WifiSession.objects.filter(closed, device=device, stop_time__isnull=True).update(stop_time=time)
    if opened:
        WifiSession.objects.bulk_create(opened)
    return current


# --- active checks ---------------------------------------------------------------------------------------


def check_values(device, ping, now):
    """{metric key: value} of the active checks for one device, and the ping points."""
    values, points = {}, []
    at = to_us(now)
    if ping is not None:
        values[HealthMetric.PING] = int(ping.reachable)
        points += [("ping", "", "reachable", float(ping.reachable)), ("ping", "", "loss", ping.loss)]
        if ping.reachable:
            points += [("ping", "", f, getattr(ping, f)) for f in ("rtt_min", "rtt_avg", "rtt_max")]
    config = getattr(device, "config", None)
    if config is not None:
        values[HealthMetric.CONFIG_APPLIED] = int(config.status == "applied")
    monitoring = getattr(device, "monitoring", None)
    last = monitoring.last_data_time if monitoring is not None else None
    window = timedelta(seconds=settings.NETFLEET_MONITORING_DATA_COLLECTED_WINDOW)
    values[HealthMetric.DATA_COLLECTED] = int(last is not None and now - last <= window)
    points += [(key, "", key, float(value)) for key, value in values.items() if key != HealthMetric.PING]
    return values, [(device.pk, metric, tag, field, at, value) for metric, tag, field, value in points]


def run_checks(*, device_ids, now=None):
    """Ping, config-applied and data-collected checks for a chunk of devices (devices without an address are not
    pinged). Ping probes run concurrently; health is then updated device by device."""
    now = now or timezone.now()
    devices = list(
        Device.objects.filter(pk__in=device_ids, is_deactivated=False, organization__is_active=True).select_related(
            "config", "monitoring"
        )
    )
    addresses = {device.pk: device.management_ip or device.last_ip for device in devices}
    pings = ping_hosts([address for address in addresses.values() if address])
    all_points = []
    for device in devices:
        address = addresses[device.pk]
        values, points = check_values(device, pings.get(address) if address else None, now)
        all_points += points
        with transaction.atomic():
            monitoring, _ = DeviceMonitoring.objects.select_for_update().get_or_create(device=device)
            if evaluate_health(device=device, monitoring=monitoring, values=values, time=now):
                monitoring.save(update_fields=["status", "status_changed", "modified"])
    get_backend().write(all_points)
    return len(devices)


def devices_to_check():
    return Device.objects.filter(is_deactivated=False, organization__is_active=True).order_by("pk")


# --- rollups and retention ------------------------------------------------------------------------------


def roll_up_points(*, now=None):
    """Count the raw points of every hour that closed at least NETFLEET_MONITORING_ROLLUP_GRACE seconds ago (time
    for its ingest transactions to commit) into the hourly rollups, which charts of whole-hour buckets read.
    Idempotent. Returns how many rollup rows were written."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.NETFLEET_MONITORING_ROLLUP_GRACE)
    return get_backend().rollup(until=to_us(now - grace))


def apply_retention(*, now=None):
    """Delete raw points older than the raw retention once rolled up (downsampled: only their hourly rollups
    remain); delete rollups past their own retention."""
    now = now or timezone.now()
    backend = get_backend()
    raw_horizon = to_us(now - timedelta(days=settings.NETFLEET_MONITORING_RAW_RETENTION_DAYS))
    rollup_horizon = to_us(now - timedelta(days=settings.NETFLEET_MONITORING_ROLLUP_RETENTION_DAYS))
    return {"downsampled": backend.downsample(before=raw_horizon), "expired": backend.expire(before=rollup_horizon)}
