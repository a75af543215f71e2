"""Views that belong to no domain: health, docs gating and Django's error handlers for API paths."""

from django import http
from django.conf import settings
from django.views import defaults
from drf_spectacular.renderers import OpenApiJsonRenderer
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from netfleet.core import health
from netfleet.core.api.exceptions import json_error, uses_api_errors


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "degraded"])
    checks = serializers.DictField(child=serializers.CharField())


class HealthView(APIView):
    """Database, cache and broker reachability. 200 when all answer, else 503."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: HealthSerializer, 503: HealthSerializer})
    def get(self, request):
        checks, healthy = health.run_checks()
        return Response({"status": "ok" if healthy else "degraded", "checks": checks}, status=200 if healthy else 503)


class DocsGateMixin:
    """Docs exist only where ENABLE_DOCS holds (never in production); elsewhere they are an ordinary 404."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def dispatch(self, request, *args, **kwargs):
        if not settings.ENABLE_DOCS:
            return json_error(request, 404, "Not found")
        return super().dispatch(request, *args, **kwargs)


class SchemaView(DocsGateMixin, SpectacularAPIView):
    renderer_classes = [OpenApiJsonRenderer]


class SwaggerView(DocsGateMixin, SpectacularSwaggerView):
    pass


class RedocView(DocsGateMixin, SpectacularRedocView):
    pass


def page_not_found(request, exception=None):
    if uses_api_errors(request.path):
        return json_error(request, 404, "Not found")
    return defaults.page_not_found(request, exception)


def server_error(request):
    if uses_api_errors(request.path):
        return json_error(request, 500, "Internal server error")
    return defaults.server_error(request)


def bad_request(request, exception=None):
    if uses_api_errors(request.path):
        return json_error(request, 400, "Bad request")
    return defaults.bad_request(request, exception)


def permission_denied(request, exception=None):
    if uses_api_errors(request.path):
        return json_error(request, 403, str(exception) if exception and str(exception) else "Permission denied")
    return defaults.permission_denied(request, exception)


def csrf_failure(request, reason=""):
    if uses_api_errors(request.path):
        return json_error(request, 403, "CSRF check failed")
    return http.HttpResponseForbidden("CSRF check failed")
