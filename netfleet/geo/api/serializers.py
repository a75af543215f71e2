import uuid

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from netfleet.accounts.models import Organization
from netfleet.controller.models import Device
from netfleet.core.api.serializers import NetfleetModelSerializer
from netfleet.core.tenancy import get_access

from ..choices import LocationType
from ..geometry import parse_geometry
from ..images import prepare_upload
from ..models import DeviceLocation, FloorPlan, Location, normalize_indoor

GEOMETRY_SCHEMA = {
    "oneOf": [
        {
            "type": "object",
            "properties": {"type": {"type": "string"}, "coordinates": {"type": "array", "items": {}}},
            "required": ["type"],
        },
        {"type": "string"},
    ],
    "description": "GeoJSON geometry ([longitude, latitude]), answered as GeoJSON; WKT text such as "
    '"POINT (12.51 41.89)" is also accepted, and in forms `geometry.type` with `geometry.coordinates` '
    "(a JSON array such as [12.51, 41.89]).",
}
INDOOR_HELP = '"x,y" point on the floor plan image, from its top left corner (e.g. "-36,264")'


def _access(serializer):
    request = serializer.context.get("request")
    return get_access(request) if request is not None else None


def _permission(serializer, kind="permission_write"):
    return getattr(serializer.context.get("view"), kind, None)


def _limit_to_visible(field, access, permission):
    """Related objects the caller cannot see do not exist for it (another tenant's id is a 422, not a leak)."""
    if access is not None and not access.is_superuser:
        field.queryset = field.queryset.visible_to(access, permission)


@extend_schema_field(GEOMETRY_SCHEMA)
class GeometryField(serializers.Field):
    def to_internal_value(self, data):
        try:
            return parse_geometry(data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages, code="invalid") from None

    def to_representation(self, value):
        return value


@extend_schema_field({"type": "string", "format": "uri", "description": "Authenticated download URL of the image"})
class FloorPlanImageField(serializers.FileField):
    """Accepts an image upload; represented by the URL of the authenticated download endpoint, not /media/."""

    def to_internal_value(self, data):
        upload = super().to_internal_value(data)
        try:
            return prepare_upload(upload)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages, code=exc.error_list[0].code) from None

    def to_representation(self, value):
        if not value:
            return None
        url = reverse("geo-api:floorplan-image", kwargs={"pk": value.instance.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url


class FloorPlanBriefSerializer(serializers.ModelSerializer):
    image = FloorPlanImageField(read_only=True)

    class Meta:
        model = FloorPlan
        fields = ("id", "floor", "image")


class NestedFloorPlanSerializer(serializers.Serializer):
    """A floor plan given inside another object (`floorplan.floor`, `floorplan.image` in forms)."""

    floor = serializers.IntegerField(required=False, min_value=-32768, max_value=32767)
    image = FloorPlanImageField(required=False)


def _organization_field(serializer, fields):
    """Organizations where the caller may write; fixed once the object exists or when the context gives it."""
    field, access = fields["organization"], _access(serializer)
    if serializer.instance is not None or "organization" in serializer.context:
        field.read_only = True
    elif access is not None and not access.is_superuser:
        field.queryset = field.queryset.filter(pk__in=access.organization_ids(_permission(serializer)))


class LocationSerializer(NetfleetModelSerializer):
    organization = serializers.PrimaryKeyRelatedField(queryset=Organization.objects.filter(is_active=True))
    geometry = GeometryField(required=False, allow_null=True)
    floorplan = NestedFloorPlanSerializer(
        required=False,
        write_only=True,
        help_text="Create the location's floor plan, or change its first one (indoor locations only).",
    )
    floorplans = FloorPlanBriefSerializer(many=True, read_only=True)

    class Meta:
        model = Location
        fields = (
            "id",
            "organization",
            "name",
            "type",
            "is_mobile",
            "address",
            "geometry",
            "floorplan",
            "floorplans",
            "created",
            "modified",
        )
        read_only_fields = ("created", "modified")

    def get_fields(self):
        fields = super().get_fields()
        _organization_field(self, fields)
        return fields

    def validate(self, attrs):
        floorplan = attrs.pop("floorplan", None)
        attrs = super().validate(attrs)
        if floorplan is not None:
            kind = attrs.get("type", getattr(self.instance, "type", LocationType.OUTDOOR))
            if kind != LocationType.INDOOR:
                raise serializers.ValidationError(
                    {"floorplan": ["A floor plan can be added only to an indoor location."]}
                )
            has_one = self.instance is not None and self.instance.floorplans.exists()
            missing = {} if has_one else {name: ["Required."] for name in ("floor", "image") if name not in floorplan}
            if missing:
                raise serializers.ValidationError({"floorplan": missing})
            attrs["floorplan"] = floorplan
        return attrs


class FloorPlanSerializer(NetfleetModelSerializer):
    organization = serializers.PrimaryKeyRelatedField(read_only=True)
    location = serializers.PrimaryKeyRelatedField(queryset=Location.objects.all())
    image = FloorPlanImageField()

    class Meta:
        model = FloorPlan
        fields = ("id", "organization", "location", "floor", "image", "created", "modified")
        read_only_fields = ("created", "modified")

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None:
            fields["location"].read_only = True  # a floor plan never moves to another location
            fields["image"].required = False  # PUT without an image keeps the stored one
        _limit_to_visible(fields["location"], _access(self), _permission(self))
        return fields


class LocationDeviceSerializer(serializers.ModelSerializer):
    floorplan = serializers.UUIDField(source="devicelocation.floorplan_id", read_only=True, allow_null=True)
    indoor = serializers.SerializerMethodField(help_text=INDOOR_HELP)

    class Meta:
        model = Device
        fields = (
            "id",
            "name",
            "organization",
            "site",
            "mac_address",
            "model",
            "os",
            "management_ip",
            "last_ip",
            "is_deactivated",
            "floorplan",
            "indoor",
            "created",
            "modified",
        )
        read_only_fields = fields

    def get_indoor(self, device) -> str | None:
        return device.devicelocation.indoor or None


class DeviceLocationSerializer(serializers.ModelSerializer):
    location = LocationSerializer(read_only=True)
    floorplan = FloorPlanBriefSerializer(read_only=True)
    indoor = serializers.SerializerMethodField(help_text=INDOOR_HELP)

    class Meta:
        model = DeviceLocation
        fields = ("device", "location", "floorplan", "indoor", "created", "modified")
        read_only_fields = fields

    def get_indoor(self, device_location) -> str | None:
        return device_location.indoor or None


@extend_schema_field(
    {
        "oneOf": [{"type": "string", "format": "uuid"}, {"type": "object"}],
        "description": "The id of an existing object, or the object's fields (`location.name`... in forms)",
    }
)
class IdOrObjectField(serializers.Field):
    def to_internal_value(self, data):
        if isinstance(data, dict):
            return data
        if data == "":  # an empty form field
            return None
        try:
            return uuid.UUID(str(data))
        except ValueError:
            raise serializers.ValidationError("Must be an id or an object.", code="invalid") from None

    def to_representation(self, value):
        return value


class DeviceLocationWriteSerializer(serializers.Serializer):
    """PUT body of `device/{id}/location/`: `location` and `floorplan` as ids or as objects to create (or, for
    the device's current location, to change); `indoor` on the floor plan. Omitted `floorplan`/`indoor` keep
    their value while the location stays the same."""

    location = IdOrObjectField(required=False)
    floorplan = IdOrObjectField(required=False, allow_null=True)
    indoor = serializers.CharField(required=False, allow_null=True, allow_blank=True, help_text=INDOOR_HELP)

    def validate(self, attrs):
        device = self.context["device"]
        current = getattr(device, "devicelocation", None)
        result = {"keep": []}
        location, location_data, changed = self._location(attrs.get("location"), current)
        result.update(location=location, location_data=location_data)
        kind = (location_data or {}).get("type") or (location.type if location else LocationType.OUTDOOR)

        floorplan = attrs.get("floorplan", ...)
        if floorplan is ...:
            if not changed:
                result["keep"].append("floorplan")
        elif isinstance(floorplan, uuid.UUID):
            result["floorplan"] = self._existing(FloorPlan, floorplan, "floorplan")
            if location is None or result["floorplan"].location_id != location.pk:
                raise serializers.ValidationError({"floorplan": ["This floor plan belongs to another location."]})
        elif isinstance(floorplan, dict):
            result["floorplan_data"] = self._nested_floorplan(floorplan, location, current)
        if (result.get("floorplan") or result.get("floorplan_data")) and kind != LocationType.INDOOR:
            raise serializers.ValidationError({"floorplan": ["A floor plan can be set only for an indoor location."]})

        indoor = attrs.get("indoor", ...)
        if indoor is ...:
            if not changed:
                result["keep"].append("indoor")
        elif indoor:
            result["indoor"] = normalize_indoor(indoor)
            if result["indoor"] is None:
                raise serializers.ValidationError({"indoor": ['Must be "x,y" coordinates, e.g. "-36,264".']})
            kept = current.floorplan_id if "floorplan" in result["keep"] else None
            if not (kept or result.get("floorplan") or result.get("floorplan_data")):
                raise serializers.ValidationError({"indoor": ["Indoor coordinates need a floor plan."]})
        return result

    def _location(self, value, current):
        """(existing location or None, fields to create/change it or None, whether the device changes location)"""
        device = self.context["device"]
        if isinstance(value, uuid.UUID):
            location = self._existing(Location, value, "location", organization=device.organization)
            return location, None, current is None or location.pk != current.location_id
        if isinstance(value, dict):
            # with a location already, its fields change it ("update related Location"); else a new one is made
            location = current.location if current is not None else None
            return location, self._nested_location(value, location), current is None
        if current is None:
            raise serializers.ValidationError({"location": ["Required: the device has no location yet."]})
        return current.location, None, False

    def _existing(self, model, pk, field, **scope):
        access = _access(self)
        queryset = model.objects.filter(**scope)
        if access is not None:
            queryset = queryset.visible_to(access, _permission(self))
        found = queryset.filter(pk=pk).first()
        if found is None:
            raise serializers.ValidationError({field: [f'Invalid pk "{pk}" - object does not exist.']})
        return found

    def _nested_location(self, data, current):
        """Fields of a new location in the device's organization, or changes to the device's current one."""
        data = {name: value for name, value in data.items() if name != "organization"}
        context = {**self.context, "organization": self.context["device"].organization}
        serializer = LocationSerializer(current, data=data, partial=current is not None, context=context)
        if not serializer.is_valid():
            raise serializers.ValidationError({"location": serializer.errors})
        return dict(serializer.validated_data)

    def _nested_floorplan(self, data, location, current):
        """Fields of the floor plan to create, or to change: the location's plan for that floor, else (no floor
        given) the device's current plan there."""
        serializer = NestedFloorPlanSerializer(data=data, context=self.context)
        if not serializer.is_valid():
            raise serializers.ValidationError({"floorplan": serializer.errors})
        values = dict(serializer.validated_data)
        if location is None:
            exists = False
        elif "floor" in values:
            exists = location.floorplans.filter(floor=values["floor"]).exists()
        else:
            exists = current is not None and current.floorplan_id and current.floorplan.location_id == location.pk
        missing = {} if exists else {name: ["Required."] for name in ("floor", "image") if name not in values}
        if missing:
            raise serializers.ValidationError({"floorplan": missing})
        return values


class PointFeatureSerializer(serializers.Serializer):
    """A GeoJSON Feature whose geometry is a Point (a bare Point geometry is accepted too)."""

    type = serializers.ChoiceField(choices=["Feature"], required=False)
    geometry = GeometryField()

    def to_internal_value(self, data):
        if isinstance(data, dict) and data.get("type") not in (None, "Feature") and "geometry" not in data:
            data = {"type": "Feature", "geometry": data}
        return super().to_internal_value(data)

    def validate_geometry(self, value):
        if value["type"] != "Point":
            raise serializers.ValidationError("Device coordinates must be a Point.", code="invalid")
        return value


class LocationFeatureSerializer(serializers.Serializer):
    """A location as a GeoJSON Feature."""

    type = serializers.SerializerMethodField()
    id = serializers.UUIDField(read_only=True)
    geometry = GeometryField(read_only=True)
    properties = serializers.SerializerMethodField()

    def get_type(self, location) -> str:
        return "Feature"

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_properties(self, location):
        properties = {
            "name": location.name,
            "type": location.type,
            "is_mobile": location.is_mobile,
            "address": location.address,
            "organization": str(location.organization_id),
        }
        if hasattr(location, "device_count"):
            properties["device_count"] = location.device_count
        return properties
