from rest_framework import serializers

from netfleet.accounts.models import Organization, Site
from netfleet.controller.models import Device
from netfleet.core.api.serializers import NetfleetModelSerializer
from netfleet.core.exceptions import NetfleetError
from netfleet.core.tenancy import get_access

from .. import routeros
from ..models import Gateway

ROUTER_FIELDS = (
    "id", "name", "host", "port", "username", "use_https", "is_online", "last_checked", "created_at", "updated_at",
)  # fmt: skip


class GatewaySerializer(NetfleetModelSerializer):
    """A gateway. `organization` may be left out when the caller can write in exactly one organization; a caller
    limited to some sites must name one of them. The password is write-only; an update without it keeps it."""

    organization = serializers.PrimaryKeyRelatedField(
        queryset=Organization.objects.filter(is_active=True),
        required=False,
        help_text="Defaults to your organization when you belong to exactly one",
    )
    site = serializers.PrimaryKeyRelatedField(queryset=Site.objects.all(), required=False, allow_null=True)
    device = serializers.PrimaryKeyRelatedField(queryset=Device.objects.all(), required=False, allow_null=True)
    password = serializers.CharField(
        write_only=True, allow_blank=True, trim_whitespace=False, max_length=128, style={"input_type": "password"}
    )
    created_at = serializers.DateTimeField(source="created", read_only=True)
    updated_at = serializers.DateTimeField(source="modified", read_only=True)

    class Meta:
        model = Gateway
        fields = (
            "id", "name", "vendor", "organization", "site", "device", "host", "port", "use_https", "verify_tls",
            "ca_bundle", "username", "password", "is_online", "last_checked", "last_error", "created_at",
            "updated_at",
        )  # fmt: skip
        read_only_fields = ("vendor", "is_online", "last_checked", "last_error")

    def get_fields(self):
        fields = super().get_fields()
        request, view = self.context.get("request"), self.context.get("view")
        access = get_access(request) if request is not None else None
        if access is not None and not access.is_superuser:
            permission = getattr(view, "permission_write", None)
            fields["organization"].queryset = fields["organization"].queryset.filter(
                pk__in=access.organization_ids(permission)
            )
            for name in ("site", "device"):
                if name in fields:
                    fields[name].queryset = fields[name].queryset.visible_to(access, permission)
        return fields

    def default_organization(self):
        access = get_access(self.context["request"])
        permission = getattr(self.context.get("view"), "permission_write", None)
        if access.is_superuser:
            candidates = list(Organization.objects.filter(is_active=True).values_list("pk", flat=True)[:2])
        else:
            candidates = sorted(access.organization_ids(permission), key=str)
        if len(candidates) != 1:
            raise serializers.ValidationError(
                {"organization": ["This field is required: you may manage routers in several organizations."]}
            )
        return Organization.objects.get(pk=candidates[0])

    def validate(self, attrs):
        if self.instance is None and attrs.get("organization") is None:
            attrs["organization"] = self.default_organization()
        organization = attrs.get("organization") or self.instance.organization
        site = attrs["site"] if "site" in attrs else getattr(self.instance, "site", None)
        access = get_access(self.context["request"])
        limited = None if access.is_superuser else access.sites.get(organization.pk)
        if limited is not None and (site is None or site.pk not in limited):
            raise serializers.ValidationError({"site": ["Choose one of the sites you manage."]})
        return super().validate(attrs)

    def update(self, instance, validated_data):
        if validated_data.get("password") is None:
            validated_data.pop("password", None)
        return super().update(instance, validated_data)


class RouterSerializer(GatewaySerializer):
    """routers-api.txt's router: exactly its fields (organization and site are accepted, not shown)."""

    organization = serializers.PrimaryKeyRelatedField(
        queryset=Organization.objects.filter(is_active=True),
        required=False,
        write_only=True,
        help_text="Defaults to your organization when you belong to exactly one",
    )
    site = serializers.PrimaryKeyRelatedField(
        queryset=Site.objects.all(), required=False, allow_null=True, write_only=True
    )

    class Meta(GatewaySerializer.Meta):
        fields = (*ROUTER_FIELDS, "password", "organization", "site")
        read_only_fields = ("is_online", "last_checked")


class TestConnectionSerializer(serializers.Serializer):
    router_id = serializers.IntegerField()
    is_online = serializers.BooleanField()
    message = serializers.CharField()


class ExecuteCommandSerializer(serializers.Serializer):
    command = serializers.CharField(max_length=512, help_text="RouterOS menu or command path, e.g. ip/hotspot")
    method = serializers.ChoiceField(choices=routeros.METHODS, default="GET")
    params = serializers.DictField(child=serializers.JSONField(), required=False, help_text="Query filters (GET)")
    data = serializers.DictField(child=serializers.JSONField(), required=False, help_text="JSON body (POST/PUT/PATCH)")

    def to_internal_value(self, data):
        if isinstance(data, dict) and isinstance(data.get("method"), str):
            data = {**data, "method": data["method"].upper()}
        return super().to_internal_value(data)

    def validate_command(self, value):
        try:
            return routeros.clean_command_path(value)
        except NetfleetError as exc:
            raise serializers.ValidationError(exc.message) from None


class ExecuteCommandResultSerializer(serializers.Serializer):
    router_id = serializers.IntegerField()
    command = serializers.CharField()
    method = serializers.CharField()
    result = serializers.JSONField()
    message = serializers.CharField()


class ExecuteCommandFailureSerializer(serializers.Serializer):
    router_id = serializers.IntegerField()
    command = serializers.CharField()
    method = serializers.CharField()
    error = serializers.CharField()
    status_code = serializers.IntegerField()


class DeviceInfoSerializer(serializers.Serializer):
    identity = serializers.CharField()
    cpu_load = serializers.CharField()
    free_memory = serializers.CharField()
    total_memory = serializers.CharField()
    free_hdd_space = serializers.CharField()
    total_hdd_space = serializers.CharField()
    version = serializers.CharField()
    uptime = serializers.CharField()


class DeviceInfoResponseSerializer(serializers.Serializer):
    router_id = serializers.IntegerField()
    device_info = DeviceInfoSerializer()
    message = serializers.CharField()


class MessageSerializer(serializers.Serializer):
    message = serializers.CharField()
