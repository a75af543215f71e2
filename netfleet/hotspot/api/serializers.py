from rest_framework import serializers

from netfleet.core.api.serializers import NetfleetModelSerializer
from netfleet.core.tenancy import get_access
from netfleet.gateways.choices import GatewayVendor
from netfleet.gateways.models import Gateway

from ..choices import PackageType
from ..models import MONTH_HOURS, Package

PACKAGE_FIELDS = (
    "id", "name", "package_type", "package_type_display", "duration_hours", "duration_display", "price",
    "currency", "download_speed_mbps", "upload_speed_mbps", "download_speed_display", "upload_speed_display",
    "speed_display", "description", "is_active",
)  # fmt: skip


class RouterPackageSerializer(serializers.ModelSerializer):
    """A package as routers-api.txt shows it under `/routers/{id}/packages/`."""

    package_type_display = serializers.CharField(source="get_package_type_display", read_only=True)
    duration_display = serializers.CharField(read_only=True)
    currency = serializers.CharField(read_only=True)
    download_speed_display = serializers.SerializerMethodField()
    upload_speed_display = serializers.SerializerMethodField()
    speed_display = serializers.SerializerMethodField()

    class Meta:
        model = Package
        fields = PACKAGE_FIELDS

    def get_download_speed_display(self, package) -> str:
        return f"{package.download_speed_mbps} Mbps"

    def get_upload_speed_display(self, package) -> str:
        return f"{package.upload_speed_mbps} Mbps"

    def get_speed_display(self, package) -> str:
        return f"{package.download_speed_mbps} Mbps / {package.upload_speed_mbps} Mbps"


class PackageSerializer(NetfleetModelSerializer, RouterPackageSerializer):
    """A package with its router and sync state. `duration_hours` may be left out of a monthly package (720).
    The router cannot change once the package exists."""

    router = serializers.PrimaryKeyRelatedField(queryset=Gateway.objects.filter(vendor=GatewayVendor.MIKROTIK))
    duration_hours = serializers.IntegerField(min_value=1, required=False)
    created_at = serializers.DateTimeField(source="created", read_only=True)
    updated_at = serializers.DateTimeField(source="modified", read_only=True)

    class Meta:
        model = Package
        fields = (
            *PACKAGE_FIELDS, "router", "shared_users", "sync_state", "sync_error", "synced_at", "created_at",
            "updated_at",
        )  # fmt: skip
        read_only_fields = ("sync_state", "sync_error", "synced_at")

    def get_fields(self):
        fields = super().get_fields()
        request, view = self.context.get("request"), self.context.get("view")
        if request is not None:
            access = get_access(request)
            if not access.is_superuser:
                permission = getattr(view, "permission_write", None)
                fields["router"].queryset = fields["router"].queryset.visible_to(access, permission)
        return fields

    def validate_router(self, router):
        if self.instance is not None and router.pk != self.instance.router_id:
            raise serializers.ValidationError("A package cannot move to another router; create a new one.")
        return router

    def validate(self, attrs):
        package_type = attrs.get("package_type") or getattr(self.instance, "package_type", None)
        if "duration_hours" not in attrs and self.instance is None:
            if package_type != PackageType.MONTHLY:
                raise serializers.ValidationError({"duration_hours": ["This field is required."]})
            attrs["duration_hours"] = MONTH_HOURS
        return super().validate(attrs)


class RouterPackagesSerializer(serializers.Serializer):
    router_id = serializers.IntegerField()
    router_name = serializers.CharField()
    packages = RouterPackageSerializer(many=True)
    message = serializers.CharField()


class VoucherCreateSerializer(serializers.Serializer):
    package = serializers.PrimaryKeyRelatedField(queryset=Package.objects.all())
    count = serializers.IntegerField(min_value=1)
    prefix = serializers.RegexField(r"^[A-Za-z0-9_-]*$", max_length=16, required=False, default="")
    length = serializers.IntegerField(min_value=4, max_value=32, required=False, default=8)
    limit_bytes_total = serializers.IntegerField(min_value=1, required=False, allow_null=True)

    def __init__(self, *args, router=None, max_count=500, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["package"].queryset = Package.objects.filter(router=router)
        self.fields["count"].max_value = max_count
        self.fields["count"].validators.append(_max_value(max_count))


def _max_value(limit):
    def check(value):
        if value > limit:
            raise serializers.ValidationError(f"Ensure this value is less than or equal to {limit}.")

    return check


class VoucherSerializer(serializers.Serializer):
    code = serializers.CharField()
    package_id = serializers.IntegerField(allow_null=True)
    package_name = serializers.CharField(allow_null=True)
    limit_uptime = serializers.CharField()
    limit_bytes_total = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    on_router = serializers.BooleanField(required=False)
    used = serializers.BooleanField(required=False)
    uptime = serializers.CharField(required=False)
    bytes_in = serializers.IntegerField(required=False)
    bytes_out = serializers.IntegerField(required=False)


class VoucherListSerializer(serializers.Serializer):
    router_id = serializers.IntegerField()
    vouchers = VoucherSerializer(many=True)
    message = serializers.CharField()


class SessionSerializer(serializers.Serializer):
    id = serializers.CharField()
    user = serializers.CharField()
    address = serializers.CharField()
    mac_address = serializers.CharField()
    server = serializers.CharField()
    login_by = serializers.CharField()
    uptime = serializers.CharField()
    session_time_left = serializers.CharField()
    bytes_in = serializers.IntegerField()
    bytes_out = serializers.IntegerField()


class SessionListSerializer(serializers.Serializer):
    router_id = serializers.IntegerField()
    sessions = SessionSerializer(many=True)
    message = serializers.CharField()
