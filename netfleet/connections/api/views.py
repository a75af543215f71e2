import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, permissions, status
from rest_framework.response import Response

from netfleet.controller.models import Device
from netfleet.core.api.views import NetfleetModelViewSet, NetfleetReadOnlyModelViewSet
from netfleet.core.tenancy import get_access

from .. import filters, services
from ..models import Command, Credentials, DeviceConnection
from . import serializers

DEVICE_PARAMETER = OpenApiParameter("device_pk", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Device id")


class DeviceNestedMixin:
    """Views under `controller/device/{id}/`: the device must be visible to the caller (else 404), and writes
    need the view's write permission in the device's organization and site."""

    def get_device(self):
        if not hasattr(self, "_device"):
            try:
                pk = uuid.UUID(str(self.kwargs["device_pk"]))
            except ValueError:
                raise exceptions.NotFound() from None
            devices = Device.objects.visible_to(get_access(self.request), self.permission_read)
            device = devices.filter(pk=pk).first()
            if device is None:
                raise exceptions.NotFound()
            if self.request.method not in permissions.SAFE_METHODS:
                self.check_object_permissions(self.request, device)
            self._device = device
        return self._device

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return super().get_queryset().none()
        return super().get_queryset().filter(device=self.get_device())

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False) and "device_pk" in self.kwargs:
            context["device"] = self.get_device()
        return context


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
