from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, serializers

from netfleet.accounts.models import Organization
from netfleet.core.api.serializers import NetfleetModelSerializer
from netfleet.core.tenancy import get_access

from ..choices import CommandStatus
from ..commands import command_types, get_command_type
from ..models import Command, Credentials, DeviceConnection

# secret parameters: accepted in `params` (as the reference API takes them), stored encrypted, never shown
SECRET_PARAMS = {"password": "password", "key": "private_key", "private_key": "private_key"}


def _access(serializer):
    request = serializer.context.get("request")
    return get_access(request) if request is not None else None


class CredentialsSerializer(NetfleetModelSerializer):
    organization = serializers.PrimaryKeyRelatedField(
        queryset=Organization.objects.filter(is_active=True),
        allow_null=True,
        help_text="null shares the credentials with every organization (superusers only).",
    )
    params = serializers.JSONField(
        help_text="SSH: username, port, connect_timeout, exec_timeout, and the write-only secrets password and "
        "key (a private key). Secrets are never returned."
    )
    has_password = serializers.SerializerMethodField()
    has_private_key = serializers.SerializerMethodField()

    class Meta:
        model = Credentials
        fields = (
            "id",
            "connector",
            "name",
            "organization",
            "auto_add",
            "params",
            "has_password",
            "has_private_key",
            "created",
            "modified",
        )
        read_only_fields = ("created", "modified")

    def get_fields(self):
        fields = super().get_fields()
        access = _access(self)
        if access is not None and not access.is_superuser:
            permission = getattr(self.context.get("view"), "permission_write", None)
            field = fields["organization"]
            field.queryset = field.queryset.filter(pk__in=access.organization_ids(permission))
        return fields

    def get_has_password(self, obj) -> bool:
        return bool(obj.password)

    def get_has_private_key(self, obj) -> bool:
        return bool(obj.private_key)

    def validate_params(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value

    def validate(self, attrs):
        params = attrs.get("params")
        if params is not None:
            params = dict(params)
            for name, field in SECRET_PARAMS.items():
                if name in params:
                    value = params.pop(name)
                    if not isinstance(value, str):
                        raise serializers.ValidationError({f"params.{name}": "Must be a string."})
                    attrs[field] = value
            attrs["params"] = params
        attrs = super().validate(attrs)
        access = _access(self)
        organization = attrs.get("organization", getattr(self.instance, "organization", None))
        if organization is None and access is not None and not access.is_superuser:
            raise exceptions.PermissionDenied("Permission denied: only superusers may manage shared credentials")
        return attrs


class DeviceConnectionSerializer(NetfleetModelSerializer):
    credentials = serializers.PrimaryKeyRelatedField(queryset=Credentials.objects.all())
    host_key = serializers.CharField(
        allow_blank=True,
        required=False,
        help_text="The device's SSH host key, recorded on first connection; clear it to trust a new key.",
    )

    class Meta:
        model = DeviceConnection
        fields = (
            "id",
            "device",
            "credentials",
            "update_strategy",
            "enabled",
            "is_working",
            "failure_reason",
            "last_attempt",
            "host_key",
            "created",
            "modified",
        )
        read_only_fields = ("device", "is_working", "failure_reason", "last_attempt", "created", "modified")
        validators = []  # (device, credentials) uniqueness: checked in validate() against the URL's device

    def get_fields(self):
        fields = super().get_fields()
        access = _access(self)
        if access is not None and not access.is_superuser:
            field = fields["credentials"]
            field.queryset = field.queryset.visible_to(
                access, getattr(self.context.get("view"), "permission_read", None)
            )
        return fields

    def validate_host_key(self, value):
        from ..connectors.ssh import fingerprint

        if value and fingerprint(value) == "unknown key":
            raise serializers.ValidationError("Not an OpenSSH public key.")
        return value.strip()

    def validate(self, attrs):
        device = self.context["device"]
        credentials = attrs.get("credentials")
        if credentials is not None:
            if credentials.organization_id not in (None, device.organization_id):
                raise serializers.ValidationError({"credentials": "These credentials belong to another organization."})
            others = DeviceConnection.objects.filter(device=device, credentials=credentials)
            if self.instance is not None:
                others = others.exclude(pk=self.instance.pk)
            if others.exists():
                detail = exceptions.ErrorDetail("The device already has a connection with these credentials.", "unique")
                raise serializers.ValidationError({"credentials": [detail]})
        return super().validate(attrs)


@extend_schema_field({"type": "string", "enum": sorted(command_types()), "description": "Command type"})
class CommandTypeField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=(), **kwargs)

    def to_internal_value(self, data):
        self.choices = sorted(command_types())  # read at call time: apps may register types
        return super().to_internal_value(data)


class CommandSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=CommandStatus.choices, read_only=True)

    class Meta:
        model = Command
        fields = (
            "id",
            "device",
            "connection",
            "type",
            "input",
            "status",
            "output",
            "exit_code",
            "failure_reason",
            "requested_by",
            "created",
            "modified",
            "started",
            "finished",
        )
        read_only_fields = fields


class CommandCreateSerializer(serializers.Serializer):
    type = CommandTypeField(
        help_text="custom (input: {command}), reboot, change_password (input: {password, "
        "confirm_password}) or a type another app registered"
    )
    input = serializers.JSONField(required=False, default=dict, help_text="The type's input")
    connection = serializers.PrimaryKeyRelatedField(
        queryset=DeviceConnection.objects.all(),
        required=False,
        allow_null=True,
        help_text="The connection to use; by default the device's best working one",
    )

    def get_fields(self):
        fields = super().get_fields()
        if "device" in self.context:  # absent only when the schema is generated
            fields["connection"].queryset = DeviceConnection.objects.filter(device=self.context["device"])
        return fields

    def validate(self, attrs):
        command_type = get_command_type(attrs["type"])
        data = attrs.get("input")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise serializers.ValidationError({"input": "Must be a JSON object."})
        unknown = sorted(set(data) - set(command_type.input_serializer().fields))
        if unknown:
            raise serializers.ValidationError({"input": {name: "Unknown input field." for name in unknown}})
        checked = command_type.input_serializer(data=data)
        if not checked.is_valid():
            raise serializers.ValidationError({"input": checked.errors})
        attrs["input"] = dict(checked.validated_data)
        return attrs
