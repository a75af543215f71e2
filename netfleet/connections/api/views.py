from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.response import Response

from netfleet.controller.api.nested import DEVICE_PARAMETER, DeviceNestedMixin
from netfleet.core.api.views import NetfleetModelViewSet, NetfleetReadOnlyModelViewSet

from .. import filters, services
from ..models import Command, Credentials, DeviceConnection
from . import serializers


class CredentialsViewSet(NetfleetModelViewSet):
    """Credentials for logging in to devices. Secrets (`params.password`, `params.key`) are write-only and
    encrypted at rest. `auto_add` attaches them to every device of the organization, existing and new; shared
    credentials (no organization) are managed by superusers."""

    queryset = Credentials.objects.all()
    serializer_class = serializers.CredentialsSerializer
    filterset_class = filters.CredentialsFilterSet
    permission_read = "device:write"
    permission_write = "controller:write"

    def perform_create(self, serializer):
        serializer.instance = services.create_credentials(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.update_credentials(credentials=serializer.instance, **serializer.validated_data)


@extend_schema_view(
    **{
        name: extend_schema(parameters=[DEVICE_PARAMETER])
        for name in ("list", "create", "retrieve", "update", "partial_update", "destroy")
    }
)
class DeviceConnectionViewSet(DeviceNestedMixin, NetfleetModelViewSet):
    """A device's connections: credentials, update strategy and state (`is_working`, `failure_reason`,
    `last_attempt`), updated whenever a command or a configuration push uses them."""

    queryset = DeviceConnection.objects.select_related("device", "credentials")
    serializer_class = serializers.DeviceConnectionSerializer
    filterset_class = filters.DeviceConnectionFilterSet
    permission_read = "device:read"
    permission_write = "device:write"

    def perform_create(self, serializer):
        serializer.instance = services.create_connection(device=self.get_device(), **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.update_connection(connection=serializer.instance, **serializer.validated_data)


@extend_schema_view(
    list=extend_schema(parameters=[DEVICE_PARAMETER]), retrieve=extend_schema(parameters=[DEVICE_PARAMETER])
)
class CommandViewSet(DeviceNestedMixin, NetfleetReadOnlyModelViewSet):
    """Commands run on a device, newest first. POST queues one (202): it runs in the background over the
    device's working connection, going `in-progress` → `success` or `failed` with output and exit code."""

    queryset = Command.objects.select_related("device")
    serializer_class = serializers.CommandSerializer
    filterset_class = filters.CommandFilterSet
    permission_read = "device:read"
    permission_write = "device:write"

    @extend_schema(
        parameters=[DEVICE_PARAMETER],
        request=serializers.CommandCreateSerializer,
        responses={202: serializers.CommandSerializer},
    )
    def create(self, request, device_pk=None):
        data = serializers.CommandCreateSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        command = services.run_command(device=self.get_device(), **data.validated_data, requested_by=request.user)
        return Response(self.get_serializer(command).data, status=status.HTTP_202_ACCEPTED)
