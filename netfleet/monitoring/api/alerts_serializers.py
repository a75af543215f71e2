from django.utils import timezone
from rest_framework import serializers

from netfleet.controller.models import Device
from netfleet.core.api.serializers import NetfleetModelSerializer
from netfleet.core.tenancy import get_access

from ..alert_rules import is_default
from ..choices import HealthMetric
from ..models import AlertChannelSettings, AlertSettings, MaintenanceWindow


class AlertChannelSettingsSerializer(NetfleetModelSerializer):
    email_recipients = serializers.ListField(
        child=serializers.EmailField(), required=False, help_text="Addresses every alert is emailed to"
    )
    webhook_secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=255,
        style={"input_type": "password"},
        help_text="Key of the webhook's HMAC-SHA256 signature (write-only, stored encrypted; empty clears it). "
        "Left out of an update, the stored secret is kept.",
    )
    has_webhook_secret = serializers.SerializerMethodField()

    class Meta:
        model = AlertChannelSettings
        fields = (
            "id",
            "organization",
            "alerts_enabled",
            "email_recipients",
            "webhook_url",
            "webhook_secret",
            "has_webhook_secret",
            "created",
            "modified",
        )
        read_only_fields = ("created", "modified")

    def get_has_webhook_secret(self, obj) -> bool:
        return bool(obj.webhook_secret)


class AlertSettingsSerializer(NetfleetModelSerializer):
    metric = serializers.ChoiceField(source="metric.key", choices=HealthMetric.choices, read_only=True)
    is_default = serializers.SerializerMethodField(
        help_text="The metric follows the default rule (no custom settings); DELETE resets a custom rule to it."
    )

    class Meta:
        model = AlertSettings
        fields = ("metric", "operator", "threshold", "tolerance", "is_active", "is_default")

    def get_is_default(self, obj) -> bool:
        return is_default(obj)

    def validate(self, attrs):
        # A default rule is not a stored row (its metric may not exist yet): check the given values as a new row's.
        if self.instance is None or not is_default(self.instance):
            return super().validate(attrs)
        default, self.instance = self.instance, None
        try:
            return super().validate(attrs)
        finally:
            self.instance = default


class MaintenanceWindowSerializer(NetfleetModelSerializer):
    device = serializers.PrimaryKeyRelatedField(queryset=Device.objects.all())
    device_name = serializers.CharField(source="device.name", read_only=True)
    organization = serializers.UUIDField(source="device.organization_id", read_only=True)
    is_active = serializers.SerializerMethodField(help_text="The window is open now: the device raises no alerts")

    class Meta:
        model = MaintenanceWindow
        fields = (
            "id",
            "device",
            "device_name",
            "organization",
            "starts",
            "ends",
            "reason",
            "is_active",
            "created",
            "modified",
        )
        read_only_fields = ("created", "modified")

    def get_fields(self):
        fields = super().get_fields()
        request, view = self.context.get("request"), self.context.get("view")
        if request is not None:
            # only devices the caller may configure monitoring for; another tenant's device "does not exist"
            permission = getattr(view, "permission_write", None)
            fields["device"].queryset = Device.objects.visible_to(get_access(request), permission)
        return fields

    def get_is_active(self, obj) -> bool:
        return obj.starts <= timezone.now() < obj.ends
