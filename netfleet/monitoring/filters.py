import django_filters
from django.db.models import Q
from django.utils import timezone

from netfleet.controller.models import Device
from netfleet.core.filters import NetfleetFilterSet

from .choices import MonitoringStatus
from .models import AlertChannelSettings, MaintenanceWindow, WifiSession


def filter_monitoring_status(queryset, name, value):
    """Devices never monitored are `unknown`; deactivated devices are `deactivated` whatever their last status."""
    if value == MonitoringStatus.DEACTIVATED:
        return queryset.filter(is_deactivated=True)
    condition = Q(monitoring__status=value)
    if value == MonitoringStatus.UNKNOWN:
        condition |= Q(monitoring__isnull=True)
    return queryset.filter(condition, is_deactivated=False)


class DeviceMonitoringFilterSet(NetfleetFilterSet):
    monitoring__status = django_filters.ChoiceFilter(
        choices=MonitoringStatus.choices, method=filter_monitoring_status, label="Monitoring status"
    )
    organization = django_filters.UUIDFilter(field_name="organization_id", label="Organization (ID)")
    organization_slug = django_filters.CharFilter(field_name="organization__slug", label="Organization (slug)")

    class Meta:
        model = Device
        fields = ("monitoring__status", "organization", "organization_slug")

    def apply_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(mac_address__icontains=value))


class NearbyDeviceFilterSet(django_filters.FilterSet):
    organization = django_filters.UUIDFilter(field_name="organization_id", label="Organization (ID)")
    organization__slug = django_filters.CharFilter(field_name="organization__slug", label="Organization (slug)")
    monitoring__status = django_filters.ChoiceFilter(
        choices=MonitoringStatus.choices, method=filter_monitoring_status, label="Monitoring status"
    )
    model = django_filters.CharFilter(method="filter_model", label="Device models, separated by |")
    # applied by the view, after distances are known
    distance__lte = django_filters.NumberFilter(method="keep", label="Maximum distance (metres)", min_value=0)

    class Meta:
        model = Device
        fields = ("organization", "organization__slug", "monitoring__status", "model", "distance__lte")

    def filter_model(self, queryset, name, value):
        models = [item.strip() for item in value.split("|") if item.strip()]
        return queryset.filter(model__in=models) if models else queryset

    def keep(self, queryset, name, value):
        return queryset


class WifiSessionFilterSet(django_filters.FilterSet):
    device__organization = django_filters.UUIDFilter(field_name="device__organization_id", label="Organization (ID)")
    device = django_filters.UUIDFilter(field_name="device_id", label="Device (ID)")
    device__group = django_filters.UUIDFilter(field_name="device__group_id", label="Device group (ID)")
    start_time = django_filters.IsoDateTimeFilter(field_name="start_time", lookup_expr="exact")
    start_time__gt = django_filters.IsoDateTimeFilter(field_name="start_time", lookup_expr="gt")
    start_time__gte = django_filters.IsoDateTimeFilter(field_name="start_time", lookup_expr="gte")
    start_time__lt = django_filters.IsoDateTimeFilter(field_name="start_time", lookup_expr="lt")
    start_time__lte = django_filters.IsoDateTimeFilter(field_name="start_time", lookup_expr="lte")
    stop_time = django_filters.IsoDateTimeFilter(field_name="stop_time", lookup_expr="exact")
    stop_time__gt = django_filters.IsoDateTimeFilter(field_name="stop_time", lookup_expr="gt")
    stop_time__gte = django_filters.IsoDateTimeFilter(field_name="stop_time", lookup_expr="gte")
    stop_time__lt = django_filters.IsoDateTimeFilter(field_name="stop_time", lookup_expr="lt")
    stop_time__lte = django_filters.IsoDateTimeFilter(field_name="stop_time", lookup_expr="lte")

    class Meta:
        model = WifiSession
        fields = (
            "device__organization",
            "device",
            "device__group",
            "start_time",
            "start_time__gt",
            "start_time__gte",
            "start_time__lt",
            "start_time__lte",
            "stop_time",
            "stop_time__gt",
            "stop_time__gte",
            "stop_time__lt",
            "stop_time__lte",
        )


class AlertChannelSettingsFilterSet(django_filters.FilterSet):
    organization = django_filters.UUIDFilter(field_name="organization_id", label="Organization (ID)")
    organization_slug = django_filters.CharFilter(field_name="organization__slug", label="Organization (slug)")

    class Meta:
        model = AlertChannelSettings
        fields = ("organization", "organization_slug", "alerts_enabled")


class MaintenanceWindowFilterSet(django_filters.FilterSet):
    device = django_filters.UUIDFilter(field_name="device_id", label="Device (ID)")
    organization = django_filters.UUIDFilter(field_name="device__organization_id", label="Organization (ID)")
    organization_slug = django_filters.CharFilter(field_name="device__organization__slug", label="Organization (slug)")
    active = django_filters.BooleanFilter(method="filter_active", label="Open now (true) or not (false)")

    class Meta:
        model = MaintenanceWindow
        fields = ("device", "organization", "organization_slug", "active")

    def filter_active(self, queryset, name, value):
        now = timezone.now()
        open_now = Q(starts__lte=now, ends__gt=now)
        return queryset.filter(open_now) if value else queryset.exclude(open_now)
