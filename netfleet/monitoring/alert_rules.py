"""Alert rules as operators configure them: the rule each of a device's metrics follows (its custom
`AlertSettings`, else the default of `services.DEFAULT_RULES`), and saving or resetting a custom rule.

Kept apart from services.py (ingest, health, delivery) so the configuration path stays small; evaluate_health
reads the rules through `services.rule_for`, so what is saved here applies to the next evaluated value."""

from django.db import transaction

from .choices import HealthMetric
from .models import AlertSettings, DeviceMonitoring, Metric
from .services import DEFAULT_RULES

RULE_FIELDS = ("operator", "threshold", "tolerance", "is_active")


def is_default(alert_settings):
    """True for the unsaved settings that stand for a metric's default rule."""
    return alert_settings._state.adding


def effective_settings(metric):
    """The metric's custom settings, or unsaved settings holding its default rule."""
    custom = getattr(metric, "alert_settings", None) if not metric._state.adding else None
    if custom is not None:
        return custom
    rule = DEFAULT_RULES[metric.key]
    return AlertSettings(metric=metric, **{name: getattr(rule, name) for name in RULE_FIELDS})


def device_alert_settings(*, device, metrics):
    """The rule of every health metric of a device, in HealthMetric order. `metrics`: the device's stored
    metrics (with `alert_settings` selected); a metric not tracked yet shows its default rule."""
    stored = {metric.key: metric for metric in metrics}
    return [effective_settings(stored.get(key) or Metric(device=device, key=key)) for key in HealthMetric.values]


def save_alert_settings(*, device, key, operator, threshold, tolerance=0, is_active=True):
    """Give a device's metric a custom rule (creating the metric when no value was seen yet)."""
    with transaction.atomic():
        # ingest and the active checks lock this row before they create metrics: take the same lock so a
        # metric created here and one created by a concurrent ingest never collide
        DeviceMonitoring.objects.select_for_update().get_or_create(device=device)
        metric, _ = Metric.objects.get_or_create(device=device, key=key)
        custom = AlertSettings.objects.filter(metric=metric).first() or AlertSettings(metric=metric)
        custom.operator, custom.threshold, custom.tolerance, custom.is_active = (
            operator,
            threshold,
            tolerance,
            is_active,
        )
        custom.validated_save()
    return custom


def reset_alert_settings(*, alert_settings):
    """Drop a metric's custom rule: it follows the default again. A no-op for the default rule itself."""
    if not is_default(alert_settings):
        alert_settings.delete()
