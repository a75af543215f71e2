import hmac
import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime
from http.client import responses
from urllib.parse import parse_qsl

import orjson
from django.conf import settings
from django.core.exceptions import TooManyFieldsSent
from django.core.handlers.wsgi import get_bytes_from_wsgi, get_script_name
from django.core.serializers.json import DjangoJSONEncoder
from django.db import close_old_connections
from django.http import HttpResponse, JsonResponse, QueryDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, mixins
from rest_framework.response import Response

from netfleet.accounts import ratelimit
from netfleet.accounts.models import Organization
from netfleet.controller.models import Device
from netfleet.core.api.exceptions import error_body
from netfleet.core.api.pagination import ResultsPagination
from netfleet.core.api.permissions import TenantPermission
from netfleet.core.api.views import NetfleetReadOnlyModelViewSet, TenantScopedMixin
from netfleet.core.exceptions import NetfleetError
from netfleet.core.logging import current_request_id
from netfleet.core.middleware import (
    REQUEST_ID_HEADER,
    body_too_large_detail,
    host_allowed,
    invalid_content_length_detail,
    log_request,
    request_ids,
)
from netfleet.core.tenancy import get_access

from .. import charts, filters, ingest, locations
from ..models import Metric, WifiSession
from . import serializers as api_serializers

logger = logging.getLogger("netfleet.errors")

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


def _is_true(raw):
    return raw.strip().lower() in ("true", "1", "yes", "on")


def _flag(request, name):
    return _is_true(request.GET.get(name, ""))


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
        _ingest_request(request, pk)
        return Response(None)

    @classmethod
    def as_view(cls, **initkwargs):
        """A device's POST (`?key=`) skips DRF and the browser middleware (FastPathMiddleware): ingest is the
        fleet's hottest write path. Everything else is the DRF view. (Under a WSGI server most of these POSTs are
        answered before Django, by `ingest_wsgi`; this is the same answer for the rest and the test client.)"""
        drf_view = super().as_view(**initkwargs)

        def view(request, pk):
            if request.method == "POST" and "key" in request.GET:
                try:
                    _ingest_request(request, pk)
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


def ingest_document(pk, *, key, body, raw_time, current):
    """Store the NetJSON document `body` (bytes) a device posted with its key: the one implementation behind the
    Django view and `ingest_wsgi`. `raw_time` is the `time` query value (or None). Raises NetfleetError / APIException
    (404 unknown device, 403 wrong key, 400 malformed JSON, invalid document or time) before anything is stored."""
    device = ingest_device(pk, key)
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"Malformed JSON: {exc}") from None
    collected = parse_ingest_time(raw_time)
    ingest.ingest(device=device, document=document, time=collected, current=current)


def _ingest_request(request, pk):
    query = request.GET
    ingest_document(
        pk,
        key=query.get("key", ""),
        body=request.body,
        raw_time=query.get("time"),
        current=_is_true(query.get("current", "")),
    )


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


def error_envelope(exc, *, path, request_id):
    """(status, body, extra headers) of the API error envelope for a NetfleetError / APIException raised outside
    DRF."""
    if isinstance(exc, NetfleetError):
        code, message, details, headers = exc.status_code, exc.message, exc.details, exc.headers
    else:
        code, message, details, headers = exc.status_code, str(exc.detail), None, {}
    return code, error_body(path, code=code, message=message, request_id=request_id, details=details), headers


def fast_error(request, exc):
    """The error envelope for a view that runs outside DRF."""
    code, body, headers = error_envelope(exc, path=request.path, request_id=getattr(request, "request_id", None))
    return JsonResponse(body, status=code, headers=headers)


_INGEST_PATH = re.compile(r"^/api/v1/monitoring/device/([0-9a-fA-F-]{32,36})/?$")


def ingest_wsgi(environ, start_response):
    """A device's metric POST (`?key=`) answered below Django's request handling (netfleet.wsgi), or None when
    Django must answer it: another method, no (or an empty) key, another path, a host outside ALLOWED_HOSTS.

    Ingest is the fleet's hottest write path, and Django's request cycle (request object, signals, middleware, URL
    resolution, response object) a good share of its CPU time. The answer is the one Django gives through its middleware
    and the fast view: request id (X-Request-ID, the logging context, the access log line), the per-device rate
    limit and its headers, the body limit, `ingest_document`, the API error envelope, and the end-of-request
    check of the database connections (Django's request_finished)."""
    if environ.get("REQUEST_METHOD") != "POST":
        return None
    path_info = environ.get("PATH_INFO", "")
    match = _INGEST_PATH.match(path_info)
    if match is None:
        return None
    try:
        query = _query(environ)
    except (ValueError, TooManyFieldsSent):
        return None  # more fields than DATA_UPLOAD_MAX_NUMBER_FIELDS: Django's 400
    key = query.get("key")
    if not key or not host_allowed(environ):
        return None  # without a key the caller is limited by address or user, and answered by the DRF view
    started = time.perf_counter()
    request_id, header_value = request_ids(environ.get("HTTP_X_REQUEST_ID"))
    token = current_request_id.set(request_id)
    if not path_info.endswith("/"):
        path_info += "/"  # as PathNormalizerMiddleware routes it
    path = get_script_name(environ).rstrip("/") + path_info  # Django's request.path
    headers = [("Content-Type", "application/json")]
    try:
        try:
            code, body = _ingest_answer(environ, path_info, path, match.group(1), key, query, request_id, headers)
        except Exception:
            logger.exception("unhandled error", extra={"path": path})
            code, body = 500, error_body(path, code=500, message="Internal server error", request_id=request_id)
        headers.append((REQUEST_ID_HEADER, header_value))
        start_response(f"{code} {responses.get(code, 'Unknown Status Code')}", headers)
        log_request(method="POST", path=path, status=code, started=started, remote_addr=environ.get("REMOTE_ADDR"))
        return [b"null"] if body is None else [json.dumps(body, cls=DjangoJSONEncoder).encode()]
    finally:
        current_request_id.reset(token)
        close_old_connections()  # Django's request_finished: drop a broken or expired connection


def _query(environ):
    """The query string's values as Django's `request.GET.get` reads them (the last of each name)."""
    raw = environ.get("QUERY_STRING", "")
    if raw.isascii():  # what devices send: nothing to re-decode, parsed as QueryDict parses it at a quarter the cost
        fields = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return dict(parse_qsl(raw, keep_blank_values=True, encoding=settings.DEFAULT_CHARSET, max_num_fields=fields))
    return QueryDict(get_bytes_from_wsgi(environ, "QUERY_STRING", "")).dict()


def _ingest_answer(environ, path_info, path, pk, key, query, request_id, headers):
    """(status, JSON body or None for `null`) of a device-key ingest POST; adds the rate-limit headers."""
    verdict = ratelimit.limit("POST", path_info, lambda buckets: ratelimit.device_identity(path_info, key))
    if verdict is not None:
        headers.extend(verdict.headers)
        if verdict.refused:
            return 429, error_body(path, code=429, message=ratelimit.MESSAGE, request_id=request_id)
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    if length < 0:
        return 400, invalid_content_length_detail()
    if length > settings.NETFLEET_MAX_BODY_SIZE:
        return 413, body_too_large_detail(settings.NETFLEET_MAX_BODY_SIZE)
    body = _read(environ["wsgi.input"], length)
    try:
        ingest_document(pk, key=key, body=body, raw_time=query.get("time"), current=_is_true(query.get("current", "")))
    except (NetfleetError, exceptions.APIException) as exc:
        code, body, extra_headers = error_envelope(exc, path=path, request_id=request_id)
        headers.extend(extra_headers.items())
        return code, body
    return 200, None


def _read(stream, length):
    """Exactly `length` bytes of the request body (fewer only if the input ends first)."""
    body = stream.read(length) if length else b""
    if len(body) < length:  # a short read: read on until the length or the end of the input
        chunks, remaining = [body], length - len(body)
        while remaining > 0:
            chunk = stream.read(remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        body = b"".join(chunks)
    return body


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
