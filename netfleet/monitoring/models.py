"""Device health, alerting, WiFi sessions and the SQL time series store (points and their hourly rollups)."""

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models

from netfleet.core import outbound
from netfleet.core.fields import EncryptedTextField
from netfleet.core.models import NetfleetModel, OrganizationScopedModel, TenantManager

from .choices import AlertKind, AlertOperator, DeliveryStatus, HealthMetric, MonitoringStatus


def _is_email(value):
    try:
        validate_email(value)
    except ValidationError:
        return False
    return True


class DeviceScopedModel(NetfleetModel):
    """A row that belongs to a device: tenancy (organization, site) follows the device."""

    tenancy_organization_field = "device__organization"
    tenancy_site_field = "device__site"
    tenancy_shared = False
    objects = TenantManager()

    class Meta:
        abstract = True

    @property
    def tenancy_organization_id(self):
        return self.device.organization_id

    @property
    def tenancy_site_id(self):
        return self.device.site_id


class DeviceMonitoring(DeviceScopedModel):
    """A device's health status, its latest NetJSON DeviceMonitoring document and the ingest state
    (last traffic counters, time of the newest document) that turns counters into deltas."""

    device = models.OneToOneField("controller.Device", on_delete=models.CASCADE, related_name="monitoring")
    status = models.CharField(
        max_length=16, choices=MonitoringStatus.choices, default=MonitoringStatus.UNKNOWN, db_index=True
    )
    status_changed = models.DateTimeField(null=True, blank=True)
    status_data = models.JSONField(default=dict, blank=True, help_text="The latest NetJSON DeviceMonitoring document")
    last_data_time = models.DateTimeField(null=True, blank=True, help_text="When the device last sent data")
    # of the newest document: {"time": µs, "counters": {interface: [rx_bytes, tx_bytes]},
    # "clients": {interface: [macs]}}
    ingest_state = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = "device monitoring"

    def __str__(self):
        return f"monitoring of {self.device}"


class Metric(DeviceScopedModel):
    """The health of one of a device's metrics: instant (`is_healthy`) and tolerance-aware (`is_healthy_tolerant`,
    what alerts follow). `crossed_since` is when the current uninterrupted threshold crossing began."""

    device = models.ForeignKey("controller.Device", on_delete=models.CASCADE, related_name="monitoring_metrics")
    key = models.CharField(max_length=32, choices=HealthMetric.choices)
    is_healthy = models.BooleanField(null=True, blank=True)
    is_healthy_tolerant = models.BooleanField(null=True, blank=True)
    crossed_since = models.DateTimeField(null=True, blank=True)
    changed = models.DateTimeField(null=True, blank=True, help_text="When the health last changed")

    class Meta:
        ordering = ("key",)
        constraints = [models.UniqueConstraint(fields=("device", "key"), name="monitoring_metric_device_key")]

    def __str__(self):
        return f"{self.key} of {self.device}"


class AlertSettings(NetfleetModel):
    """A metric's alert rule when it differs from the defaults: unhealthy when `value <operator> threshold` has
    held for `tolerance` minutes."""

    metric = models.OneToOneField(Metric, on_delete=models.CASCADE, related_name="alert_settings")
    operator = models.CharField(max_length=1, choices=AlertOperator.choices)
    threshold = models.FloatField()
    tolerance = models.PositiveIntegerField(default=0, help_text="Minutes a crossing must last before it alerts")
    is_active = models.BooleanField(default=True, help_text="Inactive settings track health but raise no alerts")

    class Meta:
        verbose_name_plural = "alert settings"

    def __str__(self):
        return f"{self.metric.key} {self.operator} {self.threshold} for {self.tolerance} min"


class AlertChannelSettings(OrganizationScopedModel):
    """Where an organization's alerts go: stored always; email and a signed webhook when configured."""

    organization = models.OneToOneField(
        "accounts.Organization", on_delete=models.CASCADE, related_name="monitoring_alert_channels"
    )
    alerts_enabled = models.BooleanField(default=True)
    email_recipients = models.JSONField(default=list, blank=True)
    webhook_url = models.URLField(blank=True)
    webhook_secret = EncryptedTextField(blank=True, default="", help_text="Key of the HMAC-SHA256 signature")

    class Meta:
        verbose_name_plural = "alert channel settings"

    def __str__(self):
        return f"alert channels of {self.organization}"

    def clean(self):
        super().clean()
        errors = {}
        recipients = self.email_recipients
        if not isinstance(recipients, list) or not all(isinstance(e, str) for e in recipients):
            errors["email_recipients"] = "Must be a list of email addresses."
        else:
            invalid = [address for address in recipients if not _is_email(address)]
            if invalid:
                errors["email_recipients"] = f"Not valid email addresses: {', '.join(invalid)}"
        # URLField also accepts ftp(s)://, which a webhook cannot be delivered to
        if self.webhook_url and urlsplit(self.webhook_url).scheme.lower() not in ("http", "https"):
            errors["webhook_url"] = "Must be an http:// or https:// URL."
        elif self.webhook_url and (problem := outbound.literal_address_problem(self.webhook_url)):
            errors["webhook_url"] = problem
        if errors:
            raise ValidationError(errors)


class Alert(DeviceScopedModel):
    """A stored notification: a metric's tolerance-aware health changed (problem or recovery)."""

    device = models.ForeignKey("controller.Device", on_delete=models.CASCADE, related_name="monitoring_alerts")
    metric_key = models.CharField(max_length=32, choices=HealthMetric.choices)
    kind = models.CharField(max_length=16, choices=AlertKind.choices)
    message = models.CharField(max_length=255)
    value = models.FloatField(null=True, blank=True)
    operator = models.CharField(max_length=1, choices=AlertOperator.choices)
    threshold = models.FloatField()
    device_status = models.CharField(max_length=16, choices=MonitoringStatus.choices)
    time = models.DateTimeField(help_text="When the health changed")
    email_status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.SKIPPED)
    webhook_status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.SKIPPED)
    webhook_attempts = models.PositiveIntegerField(default=0)
    webhook_error = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ("-time",)
        indexes = [models.Index(fields=("device", "-time"), name="monitoring_alert_device_time")]

    def __str__(self):
        return self.message


class MaintenanceWindow(DeviceScopedModel):
    """While a window is open the device raises no alerts (a firmware upgrade opens one)."""

    device = models.ForeignKey("controller.Device", on_delete=models.CASCADE, related_name="maintenance_windows")
    starts = models.DateTimeField()
    ends = models.DateTimeField()
    reason = models.CharField(max_length=128, blank=True)

    class Meta:
        ordering = ("-starts",)
        indexes = [models.Index(fields=("device", "ends"), name="monitoring_maint_device_ends")]

    def __str__(self):
        return f"maintenance of {self.device} until {self.ends:%Y-%m-%d %H:%M}"

    def clean(self):
        super().clean()
        if self.starts and self.ends and self.ends <= self.starts:
            raise ValidationError({"ends": "Must be after the start."})


class WifiSession(DeviceScopedModel):
    """A WiFi client's association with one of a device's wireless interfaces, as seen in ingested data:
    opened when its MAC appears, closed (`stop_time`) when it disappears."""

    device = models.ForeignKey("controller.Device", on_delete=models.CASCADE, related_name="wifi_sessions")
    interface_name = models.CharField(max_length=64)
    ssid = models.CharField(max_length=64, blank=True)
    mac_address = models.CharField(max_length=17)
    vendor = models.CharField(max_length=128, blank=True)
    start_time = models.DateTimeField(db_index=True)
    stop_time = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ("-start_time",)
        indexes = [models.Index(fields=("device", "stop_time"), name="monitoring_wifi_device_stop")]

    def __str__(self):
        return f"{self.mac_address} on {self.device}/{self.interface_name}"


class Point(models.Model):
    """One raw time series value. `time` is in microseconds since the epoch (UTC) so bucketing is integer division
    on every database. The unique key (device, metric, time, tag, field) deduplicates resent documents and is the
    index a device's chart query reads: it touches only that device's rows of one metric in the time range."""

    id = models.BigAutoField(primary_key=True)
    device = models.ForeignKey("controller.Device", on_delete=models.CASCADE, related_name="+", db_index=False)
    metric = models.CharField(max_length=32)
    tag = models.CharField(max_length=64, blank=True, default="")
    field = models.CharField(max_length=32)
    time = models.BigIntegerField()
    value = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("device", "metric", "time", "tag", "field"), name="monitoring_point_series_time"
            )
        ]
        indexes = [models.Index(fields=("time",), name="monitoring_point_time")]  # retention sweeps by age

    def __str__(self):
        return f"{self.metric}.{self.field}@{self.time}"


class Rollup(models.Model):
    """Hourly aggregates of the points of every closed hour (rolled up as hours close); the only record of hours
    older than the raw retention, whose points are deleted (downsampled)."""

    id = models.BigAutoField(primary_key=True)
    device = models.ForeignKey("controller.Device", on_delete=models.CASCADE, related_name="+", db_index=False)
    metric = models.CharField(max_length=32)
    tag = models.CharField(max_length=64, blank=True, default="")
    field = models.CharField(max_length=32)
    time = models.BigIntegerField(help_text="Start of the hour, µs since the epoch")
    count = models.PositiveIntegerField()
    sum = models.FloatField()
    min = models.FloatField()
    max = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("device", "metric", "time", "tag", "field"), name="monitoring_rollup_series_time"
            )
        ]
        indexes = [models.Index(fields=("time",), name="monitoring_rollup_time")]

    def __str__(self):
        return f"{self.metric}.{self.field}@{self.time} (hour)"


class RollupProgress(models.Model):
    """How far the hourly rollups reach (a single row; missing means nothing was rolled up yet). Every raw point
    older than `rolled_up_until` is counted in a rollup and no newer one is; raw points older than
    `downsampled_until` were deleted, so only the rollups hold those hours."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    rolled_up_until = models.BigIntegerField(default=0, help_text="Start of an hour, µs since the epoch")
    downsampled_until = models.BigIntegerField(default=0, help_text="Start of an hour, µs since the epoch")

    class Meta:
        verbose_name = "rollup progress"
        verbose_name_plural = "rollup progress"

    def __str__(self):
        return f"rolled up until {self.rolled_up_until}, raw points kept from {self.downsampled_until}"
