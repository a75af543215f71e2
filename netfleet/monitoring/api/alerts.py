"""Alert configuration: where an organization's alerts go, the rule each metric of a device follows, and
maintenance windows. Reading needs monitoring:read, writing monitoring:write."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view

from netfleet.controller.api.nested import DEVICE_PARAMETER, DeviceNestedMixin
from netfleet.core.api.views import NetfleetModelViewSet

from .. import alert_rules, filters
from ..choices import HealthMetric
from ..models import AlertChannelSettings, MaintenanceWindow, Metric
from . import alerts_serializers as serializers

READ = "monitoring:read"
WRITE = "monitoring:write"
METRIC_PARAMETER = OpenApiParameter(
    "metric", str, OpenApiParameter.PATH, enum=HealthMetric.values, description="Metric key"
)


class AlertChannelSettingsViewSet(NetfleetModelViewSet):
    """Where an organization's alerts go (one per organization; without one, alerts are stored only).
    `alerts_enabled=false` stops storing and sending them. The webhook secret is write-only."""

    queryset = AlertChannelSettings.objects.order_by("organization__name")
    serializer_class = serializers.AlertChannelSettingsSerializer
    filterset_class = filters.AlertChannelSettingsFilterSet
    permission_read = READ
    permission_write = WRITE


@extend_schema_view(
    list=extend_schema(parameters=[DEVICE_PARAMETER]),
    **{
        name: extend_schema(parameters=[DEVICE_PARAMETER, METRIC_PARAMETER])
        for name in ("retrieve", "update", "partial_update", "destroy")
    },
)
class DeviceAlertSettingsViewSet(DeviceNestedMixin, NetfleetModelViewSet):
    """The alert rule of each health metric of a device: unhealthy when `value <operator> threshold` has held
    for `tolerance` minutes. Metrics without custom settings show the default rule (`is_default`); PUT/PATCH
    sets a custom rule, DELETE returns to the default. It applies from the next value the device reports."""

    queryset = Metric.objects.select_related("alert_settings")
    serializer_class = serializers.AlertSettingsSerializer
    permission_read = READ
    permission_write = WRITE
    lookup_field = "key"
    lookup_url_kwarg = "metric"
    lookup_value_regex = "|".join(HealthMetric.values)
    filter_backends = []
    http_method_names = ["get", "put", "patch", "delete", "head", "options"]

    def list(self, request, *args, **kwargs):
        rules = alert_rules.device_alert_settings(device=self.get_device(), metrics=self.get_queryset())
        page = self.paginate_queryset(rules)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def get_object(self):
        # permissions are the device's, checked by get_device() (through get_queryset)
        key = self.kwargs[self.lookup_url_kwarg]
        metric = self.get_queryset().filter(key=key).first() or Metric(device=self.get_device(), key=key)
        return alert_rules.effective_settings(metric)

    def perform_update(self, serializer):
        given, current = serializer.validated_data, serializer.instance  # PATCH keeps what is not given
        rule = {name: given.get(name, getattr(current, name)) for name in alert_rules.RULE_FIELDS}
        key = self.kwargs[self.lookup_url_kwarg]
        serializer.instance = alert_rules.save_alert_settings(device=self.get_device(), key=key, **rule)

    def perform_destroy(self, instance):
        alert_rules.reset_alert_settings(alert_settings=instance)


class MaintenanceWindowViewSet(NetfleetModelViewSet):
    """Periods in which a device raises no alerts (health is still tracked). `active=true` lists the open ones."""

    queryset = MaintenanceWindow.objects.select_related("device")
    serializer_class = serializers.MaintenanceWindowSerializer
    filterset_class = filters.MaintenanceWindowFilterSet
    permission_read = READ
    permission_write = WRITE
