import hmac
import uuid
from collections import OrderedDict

from django.conf import settings
from django.db.models import Count, Q
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, renderers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from netfleet.controller.models import Device
from netfleet.core.api.pagination import ResultsPagination
from netfleet.core.api.permissions import TenantPermission
from netfleet.core.api.renderers import JSONRenderer
from netfleet.core.api.views import NetfleetModelViewSet
from netfleet.core.tenancy import get_access

from .. import filters, services
from ..images import UploadLimit, content_type_of
from ..models import DeviceLocation, FloorPlan, Location
from . import serializers as api_serializers
from .forms import nested_form_data

DEVICE_KEY = OpenApiParameter(
    "key",
    str,
    description="The device's own key: the device reads or moves its position without user credentials",
)


class ImageRenderer(renderers.BaseRenderer):
    """Lets clients ask for `Accept: image/*` (the download answers with a FileResponse)."""

    media_type = "image/*"
    format = "image"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class GeoJSONPagination(ResultsPagination):
    """A page of locations as a GeoJSON FeatureCollection (with the usual count/next/previous)."""

    def get_page_size(self, request):
        if not any(name in request.query_params for name in ("page_size", "per_page")):
            return min(settings.NETFLEET_GEO_GEOJSON_PAGE_SIZE, self.max_page_size)
        return super().get_page_size(request)

    def get_paginated_response(self, data):
        return Response(
            OrderedDict(
                type="FeatureCollection",
                count=self.page.paginator.count,
                next=self.get_next_link(),
                previous=self.get_previous_link(),
                features=data,
            )
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["type", "count", "features"],
            "properties": {
                "type": {"type": "string", "enum": ["FeatureCollection"]},
                "count": {"type": "integer"},
                "next": {"type": ["string", "null"], "format": "uri"},
                "previous": {"type": ["string", "null"], "format": "uri"},
                "features": schema,
            },
        }


class FormBodyMixin:
    """Form and multipart bodies arrive with dotted field names (`floorplan.image`); serializers get them nested."""

    def get_serializer(self, *args, **kwargs):
        if "data" in kwargs:
            kwargs["data"] = nested_form_data(kwargs["data"])
        return super().get_serializer(*args, **kwargs)


def visible_devices(request, permission):
    return Device.objects.visible_to(get_access(request), permission)


class LocationViewSet(FormBodyMixin, NetfleetModelViewSet):
    """Locations (outdoor/indoor, fixed/mobile). `geometry` is GeoJSON, or WKT text; forms send `geometry.type` and
    `geometry.coordinates`. An indoor location may get its floor plan in the same request (`floorplan.floor`,
    `floorplan.image`, multipart); through a location only its first floor plan can be changed. Setting the type
    to outdoor removes its floor plans and their images."""

    queryset = Location.objects.prefetch_related("floorplans")
    serializer_class = api_serializers.LocationSerializer
    filterset_class = filters.LocationFilterSet
    permission_read = "device:read"
    permission_write = "device:write"
    max_body_size = UploadLimit()

    def perform_create(self, serializer):
        location = services.create_location(**serializer.validated_data)
        serializer.instance = self.get_queryset().get(pk=location.pk)

    def perform_update(self, serializer):
        location = services.update_location(location=serializer.instance, **serializer.validated_data)
        serializer.instance = self.get_queryset().get(pk=location.pk)

    def perform_destroy(self, instance):
        services.delete_location(location=instance)

    @extend_schema(request=None, responses=api_serializers.LocationDeviceSerializer(many=True), filters=False)
    @action(
        detail=True,
        methods=["get"],
        url_path="device",
        serializer_class=api_serializers.LocationDeviceSerializer,
        filterset_class=None,
    )
    def device(self, request, pk=None):
        location = self.get_object()
        devices = (
            visible_devices(request, self.permission_read)
            .filter(devicelocation__location=location)
            .select_related("devicelocation")
            .order_by("name")
        )
        page = self.paginate_queryset(devices)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class LocationGeoJSONView(generics.ListAPIView):
    """Locations that have devices, as a GeoJSON FeatureCollection; `device_count` counts the caller's devices
    there. Filters: `organization_id` (or `organization`), `organization_slug`."""

    permission_classes = [TenantPermission]
    permission_read = "device:read"
    serializer_class = api_serializers.LocationFeatureSerializer
    filterset_class = filters.GeoJSONLocationFilterSet
    pagination_class = GeoJSONPagination
    queryset = Location.objects.all()

    def get_queryset(self):
        access = get_access(self.request)
        devices = Q(device_locations__device__in=visible_devices(self.request, self.permission_read))
        return (
            Location.objects.visible_to(access, self.permission_read)
            .annotate(device_count=Count("device_locations", filter=devices))
            .filter(device_count__gt=0)
            .order_by("name", "id")
        )


class FloorPlanViewSet(FormBodyMixin, NetfleetModelViewSet):
    """Floor plans of indoor locations (multipart, `image` a PNG, JPEG, GIF or WEBP file within
    NETFLEET_GEO_MAX_IMAGE_BYTES). `image` is answered as the URL of `floorplan/{id}/image/`, which serves the file
    to users who may read the floor plan."""

    queryset = FloorPlan.objects.select_related("location")
    serializer_class = api_serializers.FloorPlanSerializer
    filterset_class = filters.FloorPlanFilterSet
    permission_read = "device:read"
    permission_write = "device:write"
    max_body_size = UploadLimit()

    def perform_create(self, serializer):
        serializer.instance = services.create_floorplan(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.update_floorplan(floorplan=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.delete_floorplan(floorplan=instance)

    def finalize_response(self, request, response, *args, **kwargs):
        # errors of the image download stay JSON even when the client accepts only images
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response, Response) and isinstance(getattr(response, "accepted_renderer", None), ImageRenderer):
            response.accepted_renderer, response.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return response

    @extend_schema(
        request=None,
        parameters=[OpenApiParameter("format", exclude=True)],
        responses={(200, "image/*"): OpenApiResponse(OpenApiTypes.BINARY, description="The floor plan image")},
        filters=False,
    )
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, ImageRenderer], filterset_class=None)
    def image(self, request, pk=None):
        floorplan = self.get_object()
        try:
            handle = floorplan.image.open("rb")
        except FileNotFoundError:
            raise exceptions.NotFound("The floor plan image is missing from storage.") from None
        response = FileResponse(handle, content_type=content_type_of(floorplan.image.name))
        response["Content-Disposition"] = f'inline; filename="{floorplan.image.name.rsplit("/", 1)[-1]}"'
        response["Cache-Control"] = "private, max-age=300"
        return response


def _device_uuid(pk):
    try:
        return uuid.UUID(str(pk))  # with or without dashes, as the device agent sends it
    except ValueError:
        raise exceptions.NotFound() from None


class DeviceScopedView(generics.GenericAPIView):
    """A view of one device's position: the device is found among those the caller may see (404 otherwise)."""

    permission_classes = [TenantPermission]
    permission_read = "device:read"
    permission_write = "device:write"
    queryset = Device.objects.all()
    pagination_class = None
    filter_backends = []

    def get_device(self):
        access = get_access(self.request)
        permission = self.permission_read
        device = Device.objects.visible_to(access, permission).filter(pk=_device_uuid(self.kwargs["pk"])).first()
        if device is None:
            raise exceptions.NotFound()
        self.check_object_permissions(self.request, device)
        return device


def device_location_of(device):
    device_location = (
        DeviceLocation.objects.select_related("location", "floorplan")
        .prefetch_related("location__floorplans")
        .filter(device=device)
        .first()
    )
    if device_location is None:
        raise exceptions.NotFound("This device has no location.")
    return device_location


class DeviceLocationView(FormBodyMixin, DeviceScopedView):
    """Where a device is. PUT takes `location` and `floorplan` as ids of existing objects or as objects to create
    (JSON, or multipart with dotted fields such as `location.name` and `floorplan.image`); given as an object, the
    device's current location is changed rather than replaced. `indoor` is "x,y" on the floor plan."""

    serializer_class = api_serializers.DeviceLocationSerializer
    max_body_size = UploadLimit()

    def get_serializer_class(self):
        if self.request is not None and self.request.method == "PUT":
            return api_serializers.DeviceLocationWriteSerializer
        return api_serializers.DeviceLocationSerializer

    def represent(self, device):
        context = self.get_serializer_context()
        return Response(api_serializers.DeviceLocationSerializer(device_location_of(device), context=context).data)

    def get(self, request, pk):
        return self.represent(self.get_device())

    @extend_schema(
        request={
            "application/json": api_serializers.DeviceLocationWriteSerializer,
            "multipart/form-data": api_serializers.DeviceLocationWriteSerializer,
        },
        responses=api_serializers.DeviceLocationSerializer,
    )
    def put(self, request, pk):
        device = self.get_device()
        serializer = self.get_serializer(data=request.data, context={**self.get_serializer_context(), "device": device})
        serializer.is_valid(raise_exception=True)
        services.set_device_location(device=device, **serializer.validated_data)
        return self.represent(device)

    def delete(self, request, pk):
        services.delete_device_location(device_location=device_location_of(self.get_device()))
        return Response(status=status.HTTP_204_NO_CONTENT)


class DeviceCoordinatesView(DeviceScopedView):
    """A device's position as a GeoJSON Feature (the geometry of its location). With `?key=` the device itself
    reads or updates its position without user credentials; a device may move only a mobile location."""

    serializer_class = api_serializers.PointFeatureSerializer

    def _device_key(self):
        return self.request.GET.get("key") if self.request is not None else None

    def get_authenticators(self):
        if self._device_key() is not None:
            return []
        return super().get_authenticators()

    def get_permissions(self):
        if self._device_key() is not None:
            return []
        return super().get_permissions()

    def get_device(self):
        key = self._device_key()
        if key is None:
            return super().get_device()
        device = Device.objects.filter(pk=_device_uuid(self.kwargs["pk"])).first()
        if device is None:
            raise exceptions.NotFound()
        if not hmac.compare_digest(device.key.encode(), key.encode()):
            raise exceptions.PermissionDenied("Wrong device key.")
        return device

    def feature(self, device_location):
        location = device_location.location
        return {
            "type": "Feature",
            "id": str(location.pk),
            "geometry": location.geometry,
            "properties": {
                "name": location.name,
                "type": location.type,
                "is_mobile": location.is_mobile,
                "address": location.address,
                "device": str(device_location.device_id),
            },
        }

    @extend_schema(parameters=[DEVICE_KEY], responses=api_serializers.LocationFeatureSerializer)
    def get(self, request, pk):
        return Response(self.feature(device_location_of(self.get_device())))

    @extend_schema(parameters=[DEVICE_KEY], responses=api_serializers.LocationFeatureSerializer)
    def put(self, request, pk):
        device_location = device_location_of(self.get_device())
        if self._device_key() is not None and not device_location.location.is_mobile:
            raise exceptions.PermissionDenied(
                "This device's location is not mobile: only users can move it, not the device."
            )
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.set_device_coordinates(device_location=device_location, geometry=serializer.validated_data["geometry"])
        return Response(self.feature(device_location))
