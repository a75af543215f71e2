from rest_framework import serializers

from netfleet.controller.models import Device
from netfleet.core.api.serializers import NetfleetModelSerializer

from ..choices import MonitoringStatus
from ..models import Metric, WifiSession

DEVICE_FIELDS = (
    "id",
    "name",
    "organization",
    "group",
    "mac_address",
    "model",
    "os",
    "system",
    "management_ip",
    "last_ip",
    "is_deactivated",
    "created",
    "modified",
)


class MonitoringSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=MonitoringStatus.choices, read_only=True)
    status_changed = serializers.DateTimeField(read_only=True, allow_null=True)
    last_data_time = serializers.DateTimeField(read_only=True, allow_null=True)

    def to_representation(self, device):
        monitoring = getattr(device, "monitoring", None)
        if device.is_deactivated:
            status = MonitoringStatus.DEACTIVATED
        else:
            status = monitoring.status if monitoring is not None else MonitoringStatus.UNKNOWN
        date = serializers.DateTimeField()
        return {
            "status": status,
            "status_changed": date.to_representation(monitoring.status_changed)
            if monitoring and monitoring.status_changed
            else None,
            "last_data_time": date.to_representation(monitoring.last_data_time)
            if monitoring and monitoring.last_data_time
            else None,
        }


class MonitoringDeviceSerializer(NetfleetModelSerializer):
    monitoring = MonitoringSerializer(source="*", read_only=True)

    class Meta:
        model = Device
        fields = (*DEVICE_FIELDS, "monitoring")
        read_only_fields = fields


class MetricHealthSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="key")

    class Meta:
        model = Metric
        fields = ("name", "is_healthy", "is_healthy_tolerant", "changed")


class ChartSerializer(serializers.Serializer):
    type = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    unit = serializers.CharField()
    summary = serializers.DictField(child=serializers.FloatField(allow_null=True))
    x = serializers.ListField(child=serializers.CharField())
    traces = serializers.ListField(child=serializers.ListField(), help_text="[[label, [value per x]], ...]")


class TimeframeSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    bucket_seconds = serializers.IntegerField()


class DeviceChartsSerializer(MonitoringDeviceSerializer):
    """Response of GET monitoring/device/{pk}/ (documentation only)."""

    related_metrics = MetricHealthSerializer(many=True, read_only=True)
    timeframe = TimeframeSerializer(read_only=True)
    x = serializers.ListField(child=serializers.CharField(), read_only=True)
    charts = ChartSerializer(many=True, read_only=True)
    data = serializers.JSONField(read_only=True, help_text="The device status data (only with ?status=true)")

    class Meta(MonitoringDeviceSerializer.Meta):
        fields = (*MonitoringDeviceSerializer.Meta.fields, "related_metrics", "timeframe", "x", "charts", "data")
        read_only_fields = fields


class NearbyDeviceSerializer(MonitoringDeviceSerializer):
    distance = serializers.FloatField(read_only=True, help_text="Metres from the device")

    class Meta(MonitoringDeviceSerializer.Meta):
        fields = (*MonitoringDeviceSerializer.Meta.fields, "distance")
        read_only_fields = fields


class StatusCountsSerializer(serializers.Serializer):
    unknown = serializers.IntegerField()
    ok = serializers.IntegerField()
    problem = serializers.IntegerField()
    critical = serializers.IntegerField()
    deactivated = serializers.IntegerField()


class OrganizationDashboardSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    slug = serializers.CharField()
    devices_by_status = StatusCountsSerializer()
    charts = ChartSerializer(many=True)


class DashboardSerializer(serializers.Serializer):
    """Response of GET monitoring/dashboard/ (documentation only)."""

    timeframe = TimeframeSerializer()
    devices_by_status = StatusCountsSerializer()
    x = serializers.ListField(child=serializers.CharField())
    charts = ChartSerializer(many=True)
    organizations = OrganizationDashboardSerializer(many=True)


class WifiSessionSerializer(NetfleetModelSerializer):
    organization = serializers.UUIDField(source="device.organization_id", read_only=True)
    device_name = serializers.CharField(source="device.name", read_only=True)

    class Meta:
        model = WifiSession
        fields = (
            "id",
            "device",
            "device_name",
            "organization",
            "interface_name",
            "ssid",
            "mac_address",
            "vendor",
            "start_time",
            "stop_time",
            "created",
            "modified",
        )
        read_only_fields = fields
