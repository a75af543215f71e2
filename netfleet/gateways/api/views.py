from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.decorators import action
from rest_framework.response import Response

from netfleet.core.api.exceptions import exception_handler, flatten_errors
from netfleet.core.api.views import NetfleetModelViewSet
from netfleet.core.exceptions import NetfleetError

from .. import filters, services
from ..choices import GatewayVendor
from ..models import Gateway
from . import serializers as api_serializers


def routers_face_exception_handler(exc, context):
    """routers-api.txt answers a bad request with 400 and `{"error": "<what is wrong>"}`: the field messages are
    folded into the one string (the core handler says only "Validation error" there)."""
    response = exception_handler(exc, context)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
    elif isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
    else:
        return response
    if response is None or response.status_code != status.HTTP_422_UNPROCESSABLE_ENTITY:
        return response
    items = flatten_errors(detail, "")
    parts = [f"{item['field'].lstrip('.')}: {item['message']}" if item["field"] else item["message"] for item in items]
    response.data = {"error": "; ".join(parts) or "Invalid input"}
    response.status_code = status.HTTP_400_BAD_REQUEST
    return response


class RoutersFaceMixin:
    """The `/routers/` face of routers-api.txt: bare lists, 400 `{"error": "..."}` for bad input."""

    pagination_class = None

    def get_exception_handler(self):
        return routers_face_exception_handler


FAILURE_RESPONSES = {
    400: OpenApiResponse(description="RouterOS refused the command (its message) or bad input"),
    502: OpenApiResponse(description="The router could not be reached"),
    504: OpenApiResponse(description="The router did not answer in time"),
}


class GatewayViewSet(NetfleetModelViewSet):
    """MikroTik routers (routers-api.txt) under the `/api/v1/` conventions: paginated lists, the error envelope.

    PUT is a partial update (routers-api.txt's example omits host and credentials); without `password` the
    stored one is kept. Reading needs `device:read`, writing and `execute-command` `network:write`.
    """

    queryset = Gateway.objects.filter(vendor=GatewayVendor.MIKROTIK).select_related("organization", "site")
    serializer_class = api_serializers.GatewaySerializer
    filterset_class = filters.GatewayFilterSet
    permission_read = "device:read"
    permission_write = "network:write"
    action_permissions = {
        "test_connection": "device:read",
        "device_info": "device:read",
        "execute_command": "network:write",
    }
    lookup_value_regex = r"\d+"

    def update(self, request, *args, **kwargs):
        kwargs["partial"] = True
        return super().update(request, *args, **kwargs)

    def perform_destroy(self, instance):
        services.delete_gateway(gateway=instance)

    @extend_schema(request=None, responses={200: api_serializers.TestConnectionSerializer, **FAILURE_RESPONSES})
    @action(detail=True, methods=["post"], url_path="test-connection")
    def test_connection(self, request, pk=None):
        gateway = services.test_connection(gateway=self.get_object())
        return Response(
            {"router_id": gateway.pk, "is_online": gateway.is_online, "message": "Connection test completed"}
        )

    @extend_schema(
        request=api_serializers.ExecuteCommandSerializer,
        responses={200: api_serializers.ExecuteCommandResultSerializer, **FAILURE_RESPONSES},
    )
    @action(detail=True, methods=["post"], url_path="execute-command")
    def execute_command(self, request, pk=None):
        gateway = self.get_object()
        data = api_serializers.ExecuteCommandSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        command = data.validated_data
        try:
            result = services.execute_command(gateway=gateway, **command)
        except NetfleetError as exc:
            return self.command_failed(gateway, command, exc)
        body = {"router_id": gateway.pk, "command": command["command"], "method": command["method"]}
        return Response({**body, "result": result, "message": "Command executed successfully"})

    def command_failed(self, gateway, command, exc):
        raise exc

    @extend_schema(responses={200: api_serializers.DeviceInfoResponseSerializer, **FAILURE_RESPONSES})
    @action(detail=True, methods=["get"], url_path="device-info")
    def device_info(self, request, pk=None):
        gateway = self.get_object()
        info = services.device_info(gateway=gateway)
        return Response(
            {"router_id": gateway.pk, "device_info": info, "message": "Device information retrieved successfully"}
        )


class RouterViewSet(RoutersFaceMixin, GatewayViewSet):
    """routers-api.txt's `/routers/`: a bare list, exactly the documented fields, DELETE answers a message and
    a failed command answers `{router_id, command, method, error, status_code}` with the failure's status."""

    serializer_class = api_serializers.RouterSerializer

    @extend_schema(responses={200: api_serializers.MessageSerializer})
    def destroy(self, request, *args, **kwargs):
        gateway = self.get_object()
        name = gateway.name
        self.perform_destroy(gateway)
        return Response({"message": f'Router "{name}" has been successfully deleted'})

    @extend_schema(
        request=api_serializers.ExecuteCommandSerializer,
        responses={
            200: api_serializers.ExecuteCommandResultSerializer,
            (400, "application/json"): api_serializers.ExecuteCommandFailureSerializer,
            (502, "application/json"): api_serializers.ExecuteCommandFailureSerializer,
            (504, "application/json"): api_serializers.ExecuteCommandFailureSerializer,
        },
    )
    @action(detail=True, methods=["post"], url_path="execute-command")
    def execute_command(self, request, pk=None):
        return super().execute_command(request, pk)

    def command_failed(self, gateway, command, exc):
        body = {
            "router_id": gateway.pk, "command": command["command"], "method": command["method"],
            "error": exc.message, "status_code": exc.status_code,
        }  # fmt: skip
        return Response(body, status=exc.status_code)
