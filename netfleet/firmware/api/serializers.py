from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, serializers

from netfleet.accounts.models import Organization
from netfleet.controller.models import DeviceGroup
from netfleet.core.api.serializers import NetfleetModelSerializer
from netfleet.core.tenancy import get_access
from netfleet.geo.models import Location

from ..choices import BatchStatus, UpgradeStatus, UpgradeStep
from ..hardware import get_image_type, image_types
from ..models import (
    BatchUpgradeOperation,
    Build,
    Category,
    DeviceFirmware,
    FirmwareImage,
    UpgradeOperation,
    incompatibility,
)

WRITE = "firmware:write"


def _access(serializer):
    request = serializer.context.get("request")
    return get_access(request) if request is not None else None


def _single_instance(serializer):
    return serializer.instance is not None and not isinstance(serializer.instance, list | tuple)


def _limit_to_visible(field, access, permission):
    """Related objects the caller cannot see do not exist for it (another tenant's id is a 422, not a leak)."""
    if access is not None and not access.is_superuser:
        field.queryset = field.queryset.visible_to(access, permission)


def _require_superuser_for_shared(serializer, what):
    access = _access(serializer)
    if access is not None and not access.is_superuser:
        raise exceptions.PermissionDenied(f"Permission denied: only superusers may manage shared {what}")


class UpgradeOptionsSerializer(serializers.Serializer):
    keep_config = serializers.BooleanField(
        default=True, help_text="Keep the device's configuration across the upgrade (sysupgrade without -n)"
    )
    force = serializers.BooleanField(
        default=False, help_text="Flash even if sysupgrade's image check fails, or the device already runs the build"
    )

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: "Unknown upgrade option." for name in unknown})
        return super().to_internal_value(data)


def _status_field(choices, component_name, description):
    @extend_schema_field(
        {"type": "string", "enum": [value for value, _ in choices], "description": description},
        component_name=component_name,
    )
    class StatusField(serializers.ChoiceField):
        def __init__(self, **kwargs):
            super().__init__(choices=choices, read_only=True, **kwargs)

    return StatusField


UpgradeStatusField = _status_field(UpgradeStatus.choices, "UpgradeStatusEnum", "Upgrade status")
UpgradeStepField = _status_field(UpgradeStep.choices, "UpgradeStepEnum", "Current step of the upgrade")
BatchStatusField = _status_field(BatchStatus.choices, "BatchUpgradeStatusEnum", "Mass upgrade status")


class CategorySerializer(NetfleetModelSerializer):
    organization = serializers.PrimaryKeyRelatedField(
        queryset=Organization.objects.filter(is_active=True),
        allow_null=True,
        help_text="null shares the category with every organization (superusers only).",
    )

    class Meta:
        model = Category
        fields = ("id", "name", "organization", "description", "created", "modified")
        read_only_fields = ("created", "modified")

    def get_fields(self):
        fields = super().get_fields()
        if _single_instance(self):
            fields["organization"].read_only = True  # its builds and devices' firmware stay in the organization
        return fields

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if self.instance is None and attrs.get("organization") is None:
            _require_superuser_for_shared(self, "categories")
        return attrs


class CategoryRelationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ("id", "name", "organization")
        read_only_fields = fields


class BuildSerializer(NetfleetModelSerializer):
    category = serializers.PrimaryKeyRelatedField(queryset=Category.objects.all())
    category_relation = CategoryRelationSerializer(source="category", read_only=True)

    class Meta:
        model = Build
        fields = ("id", "category", "category_relation", "version", "os", "changelog", "created", "modified")
        read_only_fields = ("created", "modified")

    def get_fields(self):
        fields = super().get_fields()
        if _single_instance(self):
            fields["category"].read_only = True  # its images are flashed on that category's devices
        else:
            _limit_to_visible(fields["category"], _access(self), WRITE)
        return fields

    def validate(self, attrs):
        attrs = super().validate(attrs)
        category = attrs.get("category")
        if self.instance is None and category is not None and category.organization_id is None:
            _require_superuser_for_shared(self, "categories' builds")
        return attrs


@extend_schema_field({"type": "string", "description": "Image type: one of the known board/target identifiers"})
class ImageTypeField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=(), **kwargs)

    def to_internal_value(self, data):
        self.choices = sorted(image_types())  # read at call time: types may be registered or configured
        return super().to_internal_value(data)


class ImageFileField(serializers.FileField):
    """Uploaded as a file; answered as the URL of its authorised download."""

    def to_representation(self, value):
        image = value.instance
        path = reverse("firmware-api:image-download", kwargs={"build_pk": image.build_id, "pk": image.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class FirmwareImageSerializer(serializers.ModelSerializer):
    type = ImageTypeField(help_text="The image type (board/target identifier), e.g. "
                          "ath79-generic-tplink_archer-c7-v5-squashfs-sysupgrade.bin")  # fmt: skip
    file = ImageFileField(help_text="The image file (multipart); answered as its download URL")
    type_label = serializers.SerializerMethodField()
    boards = serializers.SerializerMethodField(help_text="Device models the image fits")

    class Meta:
        model = FirmwareImage
        fields = ("id", "build", "type", "type_label", "boards", "file", "size", "sha256", "created", "modified")
        read_only_fields = ("build", "size", "sha256", "created", "modified")

    def get_type_label(self, obj) -> str:
        image_type = get_image_type(obj.type)
        return image_type.label if image_type else obj.type

    def get_boards(self, obj) -> list[str]:
        image_type = get_image_type(obj.type)
        return list(image_type.boards) if image_type else []

    def validate(self, attrs):
        build = self.context["build"]
        if FirmwareImage.objects.filter(build=build, type=attrs["type"]).exists():
            detail = exceptions.ErrorDetail("The build already has an image of this type.", "unique")
            raise serializers.ValidationError({"type": [detail]})
        return attrs


class UpgradeOperationSerializer(serializers.ModelSerializer):
    status = UpgradeStatusField()
    step = UpgradeStepField()
    upgrade_options = UpgradeOptionsSerializer(read_only=True)

    class Meta:
        model = UpgradeOperation
        fields = (
            "id",
            "device",
            "image",
            "batch",
            "status",
            "step",
            "progress",
            "log",
            "upgrade_options",
            "requested_by",
            "retry_of",
            "started",
            "flashing_started",
            "finished",
            "created",
            "modified",
        )
        read_only_fields = fields


class UpgradeOperationBriefSerializer(serializers.ModelSerializer):
    status = UpgradeStatusField()

    class Meta:
        model = UpgradeOperation
        fields = ("id", "device", "image", "status", "progress", "created", "finished")
        read_only_fields = fields


class DeviceFirmwareSerializer(NetfleetModelSerializer):
    image = serializers.PrimaryKeyRelatedField(queryset=FirmwareImage.objects.select_related("build__category"))
    upgrade_options = UpgradeOptionsSerializer(
        write_only=True, required=False, help_text="Options of the upgrade a new image starts"
    )
    upgrade_operation = serializers.SerializerMethodField(
        help_text="The device's latest upgrade (after a PUT or PATCH that changed the image: the one it started)"
    )

    class Meta:
        model = DeviceFirmware
        fields = ("id", "device", "image", "installed", "upgrade_options", "upgrade_operation", "created", "modified")
        read_only_fields = ("device", "installed", "created", "modified")

    def get_fields(self):
        fields = super().get_fields()
        _limit_to_visible(fields["image"], _access(self), "device:read")
        return fields

    @extend_schema_field(UpgradeOperationBriefSerializer(allow_null=True))
    def get_upgrade_operation(self, obj):
        operation = UpgradeOperation.objects.filter(device_id=obj.device_id).order_by("-created").first()
        return UpgradeOperationBriefSerializer(operation).data if operation else None

    def validate(self, attrs):
        attrs = super().validate(attrs)
        image = attrs.get("image")
        if image is not None:
            reason = incompatibility(self.context["device"], image)
            if reason:
                raise serializers.ValidationError({"image": reason})
        return attrs


class BuildBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Build
        fields = ("id", "category", "version", "os")
        read_only_fields = fields


class BatchUpgradeOperationSerializer(serializers.ModelSerializer):
    build = BuildBriefSerializer(read_only=True)
    status = BatchStatusField()
    upgrade_options = UpgradeOptionsSerializer(read_only=True)
    operations_count = serializers.IntegerField(read_only=True)
    in_progress_count = serializers.IntegerField(read_only=True)
    success_count = serializers.IntegerField(read_only=True)
    failed_count = serializers.IntegerField(read_only=True)
    aborted_count = serializers.IntegerField(read_only=True)
    cancelled_count = serializers.IntegerField(read_only=True)
    progress_report = serializers.SerializerMethodField(help_text='"N out of M" operations finished')
    success_rate = serializers.SerializerMethodField(help_text="Percent of operations that succeeded")
    failed_rate = serializers.SerializerMethodField(help_text="Percent of operations that failed")
    aborted_rate = serializers.SerializerMethodField(help_text="Percent of operations aborted or cancelled")

    class Meta:
        model = BatchUpgradeOperation
        fields = (
            "id",
            "build",
            "organization",
            "group",
            "location",
            "upgrade_all",
            "upgrade_options",
            "status",
            "operations_count",
            "in_progress_count",
            "success_count",
            "failed_count",
            "aborted_count",
            "cancelled_count",
            "progress_report",
            "success_rate",
            "failed_rate",
            "aborted_rate",
            "requested_by",
            "created",
            "modified",
            "finished",
        )
        read_only_fields = fields

    @staticmethod
    def _rate(count, total):
        return round(100 * count / total) if total else 0

    def get_progress_report(self, obj) -> str:
        return f"{obj.operations_count - obj.in_progress_count} out of {obj.operations_count}"

    def get_success_rate(self, obj) -> int:
        return self._rate(obj.success_count, obj.operations_count)

    def get_failed_rate(self, obj) -> int:
        return self._rate(obj.failed_count, obj.operations_count)

    def get_aborted_rate(self, obj) -> int:
        return self._rate(obj.aborted_count + obj.cancelled_count, obj.operations_count)


class BatchUpgradeOperationDetailSerializer(BatchUpgradeOperationSerializer):
    upgrade_operations = UpgradeOperationBriefSerializer(source="operations", many=True, read_only=True)

    class Meta(BatchUpgradeOperationSerializer.Meta):
        fields = (*BatchUpgradeOperationSerializer.Meta.fields, "upgrade_operations")
        read_only_fields = fields


class BatchUpgradeStartedSerializer(BatchUpgradeOperationDetailSerializer):
    batch = serializers.UUIDField(source="pk", read_only=True, help_text="The mass upgrade's id")

    class Meta(BatchUpgradeOperationDetailSerializer.Meta):
        fields = ("batch", *BatchUpgradeOperationDetailSerializer.Meta.fields)
        read_only_fields = fields


class DryRunSerializer(serializers.Serializer):
    device_firmwares = serializers.ListField(
        child=serializers.UUIDField(), help_text="DeviceFirmware ids of the devices that would be upgraded"
    )
    devices = serializers.ListField(
        child=serializers.UUIDField(), help_text="Ids of the devices without DeviceFirmware that would be upgraded"
    )


class BatchUpgradeSerializer(serializers.Serializer):
    """The selection of a mass upgrade (POST body; the dry run takes the same as query parameters)."""

    upgrade_all = serializers.BooleanField(
        default=True, help_text="Also upgrade devices without DeviceFirmware whose model fits one of the images"
    )
    organization = serializers.PrimaryKeyRelatedField(
        queryset=Organization.objects.filter(is_active=True),
        required=False,
        allow_null=True,
        help_text="Whose devices to upgrade with a shared build (needed when you manage several organizations)",
    )
    group = serializers.PrimaryKeyRelatedField(
        queryset=DeviceGroup.objects.all(), required=False, allow_null=True, help_text="Only devices of this group"
    )
    location = serializers.PrimaryKeyRelatedField(
        queryset=Location.objects.all(), required=False, allow_null=True, help_text="Only devices at this location"
    )
    upgrade_options = UpgradeOptionsSerializer(required=False)

    def get_fields(self):
        fields = super().get_fields()
        access = _access(self)
        if access is not None and not access.is_superuser:
            fields["organization"].queryset = fields["organization"].queryset.filter(
                pk__in=access.organization_ids(WRITE)
            )
            _limit_to_visible(fields["group"], access, WRITE)
            _limit_to_visible(fields["location"], access, WRITE)
        return fields

    def validate(self, attrs):
        """Resolve whose devices are upgraded: the build's organization, else (a shared build) the one asked
        for, the caller's only one, or (superusers) every organization."""
        build, access = self.context["build"], _access(self)
        owner = build.category.organization
        organization = attrs.get("organization")
        if owner is not None:
            if organization is not None and organization.pk != owner.pk:
                raise serializers.ValidationError({"organization": "The build belongs to another organization."})
            organization = owner
        elif organization is None and not access.is_superuser:
            writable = access.organization_ids(WRITE)
            if len(writable) != 1:
                raise serializers.ValidationError(
                    {"organization": "Required: the build is shared and you may upgrade several organizations."}
                )
            organization = Organization.objects.get(pk=next(iter(writable)))
        if organization is not None and not access.has_permission(WRITE, organization.pk):
            raise exceptions.PermissionDenied(f"Permission denied: requires '{WRITE}'")
        for name in ("group", "location"):
            value = attrs.get(name)
            if value is not None and organization is not None and value.organization_id != organization.pk:
                raise serializers.ValidationError({name: "This belongs to another organization than the build."})
        attrs["organization"] = organization
        return attrs
