import hmac
import uuid
from datetime import UTC, datetime

import orjson
from django.http import HttpResponse, JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, mixins
from rest_framework.response import Response

from netfleet.accounts.models import Organization
from netfleet.controller.models import Device
from netfleet.core.api.exceptions import error_body
from netfleet.core.api.pagination import ResultsPagination
from netfleet.core.api.permissions import TenantPermission
from netfleet.core.api.views import NetfleetReadOnlyModelViewSet, TenantScopedMixin
from netfleet.core.exceptions import NetfleetError
from netfleet.core.tenancy import get_access

from .. import charts, filters, ingest, locations
from ..models import Metric, WifiSession
from . import serializers as api_serializers

PERMISSION = "monitoring:read"
INGEST_TIME_FORMAT = "%d-%m-%Y_%H:%M:%S.%f"
KEY = OpenApiParameter("key", str, description="The device key (device-facing access, instead of a user login)")
RANGE_PARAMETERS = [
    OpenApiParameter("time", str, enum=list(charts.TIMEFRAMES), description="Time frame (default 7d)"),
    OpenApiParameter("start", str, description="Range start, YYYY-MM-DD H:M:S (UTC), with end"),
    OpenApiParameter("end", str, description="Range end, YYYY-MM-DD H:M:S (UTC), with start"),
]


class BadRequest(NetfleetError):
    status_code = 400


def _flag(request, name):
    return request.GET.get(name, "").strip().lower() in ("true", "1", "yes", "on")


def _uuid_list(request, name):
    raw = request.GET.get(name, "")
    try:
        return [uuid.UUID(item.strip()) for item in raw.split(",") if item.strip()]
    except ValueError:
        raise BadRequest(
            f"{name} must be a comma-separated list of ids",
            details=[{"field": f"query.{name}", "message": "Must be comma-separated UUIDs.", "type": "invalid"}],
        ) from None


def monitored_devices(request):
    return Device.objects.visible_to(get_access(request), PERMISSION).select_related("monitoring")


class DeviceMonitoringViewSet(NetfleetReadOnlyModelViewSet):
    """Devices with their monitoring (health) status. The metrics and charts of one device are at
    `monitoring/device/{pk}/`."""

    queryset = Device.objects.select_related("monitoring")
    serializer_class = api_serializers.MonitoringDeviceSerializer
    filterset_class = filters.DeviceMonitoringFilterSet
    permission_read = PERMISSION


class DeviceMetricView(generics.GenericAPIView):
    """GET: a device's charts and health, and with `?status=true` its status data (the latest NetJSON
    DeviceMonitoring document). Session, token or device key (`?key=`) access.

    POST (device key only): a NetJSON DeviceMonitoring document collected at `time` (`%d-%m-%Y_%H:%M:%S.%f`,
    default: now); `current=true` marks it as the device's current status. An invalid document or time is a 400
    naming what is wrong, and nothing is stored. A document resent with the same `time` is not counted twice."""

    serializer_class = api_serializers.DeviceChartsSerializer
    permission_classes = []
    pagination_class = None
    filter_backends = []

    def perform_authentication(self, request):
        if "key" not in request.query_params:  # the device key path skips user authentication entirely
            super().perform_authentication(request)

    def _device(self, pk, *, key_only=False):
        try:
            device_id = uuid.UUID(str(pk))  # 32 hex digits (what agents send) or the dashed form
        except ValueError:
            raise exceptions.NotFound() from None
        key = self.request.query_params.get("key")
        if key is not None:
            device = Device.objects.select_related("organization", "monitoring").filter(pk=device_id).first()
            if device is None or device.is_deactivated or not device.organization.is_active:
                raise exceptions.NotFound()
            if not hmac.compare_digest(device.key.encode(), key.encode()):
                raise exceptions.PermissionDenied("Wrong device key")
            return device
        if not self.request.user.is_authenticated:
            raise exceptions.NotAuthenticated("The device key (?key=) or a login is required")
        if key_only:
            raise exceptions.PermissionDenied("Only the device itself (?key=) may send its metrics")
        if not get_access(self.request).has_permission(PERMISSION):
            raise exceptions.PermissionDenied(f"Permission denied: requires '{PERMISSION}'")
        device = monitored_devices(self.request).filter(pk=device_id).first()
        if device is None:
            raise exceptions.NotFound()
        return device

    @extend_schema(parameters=[KEY, *RANGE_PARAMETERS, OpenApiParameter("status", bool)])
    def get(self, request, pk):
        device = self._device(pk)
        span = charts.time_range(request.query_params)
        body = api_serializers.MonitoringDeviceSerializer(device, context=self.get_serializer_context()).data
        metrics = Metric.objects.filter(device=device)
        body["related_metrics"] = api_serializers.MetricHealthSerializer(metrics, many=True).data
        body["timeframe"] = charts.timeframe_of(span)
        body["x"] = [charts.iso(t) for t in span.x]
        body["charts"] = charts.device_charts(device, span)
        if _flag(request, "status"):
            monitoring = getattr(device, "monitoring", None)
            body["data"] = monitoring.status_data if monitoring is not None else {}
        return Response(body)

    @extend_schema(
        parameters=[
            KEY,
            OpenApiParameter("time", str, description="When the data was collected: %d-%m-%Y_%H:%M:%S.%f (UTC)"),
            OpenApiParameter("current", bool, description="The document is the device's current status"),
        ],
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: OpenApiResponse(description="Stored"), 400: OpenApiResponse(description="Invalid")},
    )
    def post(self, request, pk):
        # without ?key= (a device's requests take the fast path, see as_view): only the errors saying why not
        self._device(pk, key_only=True)
        ingest_document(request, pk)
        return Response(None)

    @classmethod
    def as_view(cls, **initkwargs):
        """A device's POST (`?key=`) skips DRF and the browser middleware (FastPathMiddleware): ingest is the
        fleet's hottest write path. Everything else is the DRF view."""
        drf_view = super().as_view(**initkwargs)

        def view(request, pk):
            if request.method == "POST" and "key" in request.GET:
                try:
                    ingest_document(request, pk)
                except (NetfleetError, exceptions.APIException) as exc:
                    return fast_error(request, exc)
                return HttpResponse(b"null", content_type="application/json")
            return drf_view(request, pk=pk)

        view.__dict__.update(drf_view.__dict__)  # cls, initkwargs, csrf_exempt: what routing and the schema read
        view.fast_path = lambda request: request.method == "POST" and "key" in request.GET
        return view


def ingest_device(pk, key):
    """The device a key-authenticated ingest is for (only the columns ingest needs)."""
    try:
        device_id = uuid.UUID(str(pk))
    except ValueError:
        raise exceptions.NotFound() from None
    device = ingest.find_device(device_id)
    if device is None:
        raise exceptions.NotFound()
    if not hmac.compare_digest(device.key.encode(), key.encode()):
        raise exceptions.PermissionDenied("Wrong device key")
    return device


def ingest_document(request, pk):
    device = ingest_device(pk, request.GET.get("key", ""))
    try:
        document = orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Malformed JSON: {exc}") from None
    collected = parse_ingest_time(request.GET.get("time"))
    ingest.ingest(device=device, document=document, time=collected, current=_flag(request, "current"))


def parse_ingest_time(raw):
    if raw is None:
        return None
    try:
        return datetime.strptime(raw, INGEST_TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise BadRequest(
            "time must be in the format %d-%m-%Y_%H:%M:%S.%f",
            details=[{"field": "query.time", "message": "Expected %d-%m-%Y_%H:%M:%S.%f", "type": "invalid"}],
        ) from None


def fast_error(request, exc):
    """The error envelope for a view that runs outside DRF."""
    if isinstance(exc, NetfleetError):
        code, message, details = exc.status_code, exc.message, exc.details
    else:
        code, message, details = exc.status_code, str(exc.detail), None
    request_id = getattr(request, "request_id", None)
    body = error_body(request.path, code=code, message=message, request_id=request_id, details=details)
    return JsonResponse(body, status=code)


class NearbyDeviceView(TenantScopedMixin, mixins.ListModelMixin, generics.GenericAPIView):
    """Devices near this one (metres, nearest first) with their monitoring status."""

    queryset = Device.objects.select_related("monitoring")
    serializer_class = api_serializers.NearbyDeviceSerializer
    filterset_class = filters.NearbyDeviceFilterSet
    pagination_class = ResultsPagination
    permission_read = PERMISSION

    def get(self, request, pk):
        try:
            origin = self.get_queryset().select_related("devicelocation__location").filter(pk=uuid.UUID(pk)).first()
        except ValueError:
            origin = None
        if origin is None:
            raise exceptions.NotFound()
        point = locations.device_coordinates(origin)
        if point is None:
            raise exceptions.NotFound("The device has no location")
        devices = self.filter_queryset(self.get_queryset().exclude(pk=origin.pk))
        max_distance = self.filterset_value("distance__lte")
        found = []
        for device, distance in locations.nearby(devices, point, max_distance):
            device.distance = round(distance, 2)
            found.append(device)
        page = self.paginate_queryset(found)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def filterset_value(self, name):
        raw = self.request.query_params.get(name)
        return float(raw) if raw not in (None, "") else None  # validated by the filterset already


class DashboardView(generics.GenericAPIView):
    """Fleet charts for what the caller may see: devices by monitoring status, total traffic and WiFi clients, in
    general and per organization. Filters: `organization_slug`, `location_id`, `floorplan_id` (comma lists)."""

    permission_classes = [TenantPermission]
    permission_read = PERMISSION
    serializer_class = api_serializers.DashboardSerializer
    pagination_class = None
    filter_backends = []

    @extend_schema(
        parameters=[
            *RANGE_PARAMETERS,
            OpenApiParameter("organization_slug", str, description="Comma-separated organization slugs"),
            OpenApiParameter("location_id", str, description="Comma-separated location ids"),
            OpenApiParameter("floorplan_id", str, description="Comma-separated floor plan ids"),
        ]
    )
    def get(self, request):
        span = charts.time_range(request.query_params)
        devices = monitored_devices(request)
        slugs = [slug.strip() for slug in request.query_params.get("organization_slug", "").split(",") if slug.strip()]
        if slugs:
            devices = devices.filter(organization__slug__in=slugs)
        devices = locations.filter_by_location(
            devices, _uuid_list(request, "location_id"), _uuid_list(request, "floorplan_id")
        )
        organization_ids = devices.values("organization_id")
        per_organization = [
            {
                "id": str(organization.pk),
                "name": organization.name,
                "slug": organization.slug,
                "devices_by_status": charts.status_counts(devices.filter(organization=organization)),
                "charts": charts.fleet_charts(devices.filter(organization=organization), span),
            }
            for organization in Organization.objects.filter(pk__in=organization_ids).order_by("name")
        ]
        return Response(
            {
                "timeframe": charts.timeframe_of(span),
                "devices_by_status": charts.status_counts(devices),
                "x": [charts.iso(t) for t in span.x],
                "charts": charts.fleet_charts(devices, span),
                "organizations": per_organization,
            }
        )


class WifiSessionViewSet(NetfleetReadOnlyModelViewSet):
    """WiFi client sessions seen in the devices' monitoring data (open while `stop_time` is null)."""

    queryset = WifiSession.objects.select_related("device")
    serializer_class = api_serializers.WifiSessionSerializer
    filterset_class = filters.WifiSessionFilterSet
    permission_read = PERMISSION
