from rest_framework import exceptions, serializers

from netfleet.accounts.models import Organization
from netfleet.core.api.serializers import NetfleetModelSerializer
from netfleet.core.tenancy import get_access
from netfleet.pki.models import Ca, Cert

from ..models import IpAddress, Subnet, Vpn

# fixed once created: the backend and its keys, certificates and address pool
VPN_FIXED_FIELDS = ("organization", "backend", "ca", "cert", "subnet")


def _access(serializer):
    request = serializer.context.get("request")
    return get_access(request) if request is not None else None


def _single_instance(serializer):
    return serializer.instance is not None and hasattr(serializer.instance, "pk")


def _limit(serializer, fields, related=()):
    """Related objects the caller cannot see do not exist for it; organizations are those it may write in."""
    access, view = _access(serializer), serializer.context.get("view")
    if access is None or access.is_superuser:
        return
    organization = fields.get("organization")
    if organization is not None and not organization.read_only:
        permission = getattr(view, "permission_write", None)
        organization.queryset = organization.queryset.filter(pk__in=access.organization_ids(permission))
    for name in related:
        field = fields.get(name)
        if field is not None and not field.read_only:
            field.queryset = field.queryset.visible_to(access, getattr(view, "permission_read", None))


class SubnetSerializer(NetfleetModelSerializer):
    organization = serializers.PrimaryKeyRelatedField(queryset=Organization.objects.filter(is_active=True))

    class Meta:
        model = Subnet
        fields = ("id", "name", "organization", "subnet", "version", "description", "created", "modified")
        read_only_fields = ("version", "created", "modified")
        validators = []  # overlaps (which include duplicates) are a 422 from Subnet.clean()

    def get_fields(self):
        fields = super().get_fields()
        if _single_instance(self):
            fields["organization"].read_only = True
        _limit(self, fields)
        return fields


class IpAddressSerializer(NetfleetModelSerializer):
    ip_address = serializers.IPAddressField(
        required=False, help_text="Leave out to get the lowest free address of the subnet"
    )

    class Meta:
        model = IpAddress
        fields = ("id", "subnet", "ip_address", "description", "created", "modified")
        read_only_fields = ("subnet", "created", "modified")
        validators = []  # a taken address is a 409 from the allocation service


class VpnSerializer(NetfleetModelSerializer):
    organization = serializers.PrimaryKeyRelatedField(
        queryset=Organization.objects.filter(is_active=True),
        allow_null=True,
        help_text="null shares the VPN server with every organization (superusers only).",
    )
    ca = serializers.PrimaryKeyRelatedField(
        queryset=Ca.objects.all(), required=False, allow_null=True, help_text="OpenVPN: created when left out"
    )
    cert = serializers.PrimaryKeyRelatedField(
        queryset=Cert.objects.all(), required=False, allow_null=True, help_text="OpenVPN: created when left out"
    )
    subnet = serializers.PrimaryKeyRelatedField(
        queryset=Subnet.objects.all(),
        required=False,
        allow_null=True,
        help_text="IP pool of the tunnel (required for WireGuard)",
    )
    ip_address = serializers.CharField(source="ip.ip_address", read_only=True, allow_null=True, default=None)

    class Meta:
        model = Vpn
        fields = (
            "id",
            "name",
            "host",
            "organization",
            "key",
            "ca",
            "cert",
            "backend",
            "notes",
            "dh",
            "config",
            "subnet",
            "ip",
            "ip_address",
            "public_key",
            "created",
            "modified",
        )
        read_only_fields = ("dh", "ip", "public_key", "created", "modified")
        extra_kwargs = {"key": {"required": False}}
        validators = []  # (organization, name) is settled by the database (-> 409)

    def get_fields(self):
        fields = super().get_fields()
        if _single_instance(self):
            for name in VPN_FIXED_FIELDS:
                fields[name].read_only = True
        _limit(self, fields, related=("ca", "cert", "subnet"))
        return fields

    def validate_config(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value

    def validate(self, attrs):
        attrs = super().validate(attrs)
        access = _access(self)
        if self.instance is None and attrs.get("organization") is None and access and not access.is_superuser:
            raise exceptions.PermissionDenied("Permission denied: only superusers may create shared VPN servers")
        organization = attrs.get("organization", getattr(self.instance, "organization", None))
        name = attrs.get("name")
        if (
            name
            and Vpn.objects.filter(organization=organization, name=name)
            .exclude(pk=getattr(self.instance, "pk", None))
            .exists()
        ):
            raise serializers.ValidationError(
                {"name": [serializers.ErrorDetail("A VPN server with this name already exists.", code="unique")]}
            )
        return attrs
