import uuid

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, generics, mixins, permissions, renderers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from netfleet.controller.api.nested import DEVICE_PARAMETER, DeviceNestedMixin
from netfleet.controller.models import Device
from netfleet.core.api.pagination import ResultsPagination
from netfleet.core.api.permissions import TenantPermission
from netfleet.core.api.renderers import JSONRenderer
from netfleet.core.api.views import (
    NetfleetModelViewSet,
    NetfleetReadOnlyModelViewSet,
    ParentNestedMixin,
    TenantScopedMixin,
)
from netfleet.core.exceptions import Conflict
from netfleet.core.tenancy import get_access

from .. import filters, services
from ..models import BatchUpgradeOperation, Build, Category, DeviceFirmware, FirmwareImage, UpgradeOperation
from . import serializers

READ, WRITE = "device:read", "firmware:write"
BUILD_PARAMETER = OpenApiParameter("build_pk", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Build id")
DEVICE_ID = OpenApiParameter("pk", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Device id")
NO_FORMAT = OpenApiParameter("format", exclude=True)


class BinaryRenderer(renderers.BaseRenderer):
    """Lets clients ask for `Accept: application/octet-stream` (the download answers with a FileResponse)."""

    media_type = "application/octet-stream"
    format = "bin"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


def _uuid_or_404(value):
    try:
        return uuid.UUID(str(value))  # with or without dashes
    except ValueError:
        raise exceptions.NotFound() from None


class CategoryViewSet(NetfleetModelViewSet):
    """Firmware categories. Shared categories (no organization) are readable by everyone and writable by
    superusers only. Filter: `organization` (slug or id)."""

    queryset = Category.objects.all()
    serializer_class = serializers.CategorySerializer
    filterset_class = filters.CategoryFilterSet
    permission_read = READ
    permission_write = WRITE


class BuildViewSet(NetfleetModelViewSet):
    """Firmware builds of a category: version, OS identifier (what devices report once they run it: it
    confirms an upgrade) and changelog. Filters: `category`, `version`, `os`, `organization` (slug).

    `build/{id}/upgrade/`: POST upgrades every device of the build's organization (or, for a shared build, of
    the chosen one) whose DeviceFirmware is of the build's category, plus (`upgrade_all`, default true) the
    devices without DeviceFirmware whose model fits one of the build's images, optionally only those of a
    `group` and/or `location`; it answers 201 with the mass upgrade, which runs in the background. GET is its
    dry run with the same selection as query parameters: the DeviceFirmware ids and, for devices without one,
    the Device ids that POST would upgrade. Both need `firmware:write` on the organization upgraded."""

    queryset = Build.objects.select_related("category")
    serializer_class = serializers.BuildSerializer
    filterset_class = filters.BuildFilterSet
    permission_read = READ
    permission_write = WRITE
    action_permissions = {"upgrade": WRITE}

    def _selection(self, data):
        build = generics.get_object_or_404(self.get_queryset(), pk=_uuid_or_404(self.kwargs["pk"]))
        context = {**self.get_serializer_context(), "build": build}
        selection = serializers.BatchUpgradeSerializer(data=data, context=context)
        selection.is_valid(raise_exception=True)
        devices = Device.objects.visible_to(get_access(self.request), WRITE)
        fields = {name: selection.validated_data.get(name) for name in ("organization", "group", "location")}
        return build, devices, fields, selection.validated_data

    @extend_schema(
        methods=["GET"],
        operation_id="firmware_upgrader_build_upgrade_dry_run",
        summary="Dry-run batch upgrade",
        parameters=[
            OpenApiParameter("upgrade_all", OpenApiTypes.BOOL, description="Include devices without DeviceFirmware"),
            OpenApiParameter("organization", OpenApiTypes.UUID, description="Whose devices (shared builds)"),
            OpenApiParameter("group", OpenApiTypes.UUID, description="Only devices of this group"),
            OpenApiParameter("location", OpenApiTypes.UUID, description="Only devices at this location"),
        ],
        request=None,
        responses=serializers.DryRunSerializer,
        filters=False,
    )
    @extend_schema(
        methods=["POST"],
        summary="Perform batch upgrade",
        request=serializers.BatchUpgradeSerializer,
        responses={201: serializers.BatchUpgradeStartedSerializer},
    )
    @action(detail=True, methods=["get", "post"], filterset_class=None, pagination_class=None)
    def upgrade(self, request, pk=None):
        if request.method == "GET":
            build, devices, fields, data = self._selection(request.query_params)
            return Response(services.dry_run(build=build, devices=devices, upgrade_all=data["upgrade_all"], **fields))
        build, devices, fields, data = self._selection(request.data)
        batch = services.start_batch_upgrade(
            build=build,
            devices=devices,
            upgrade_all=data["upgrade_all"],
            upgrade_options=data.get("upgrade_options"),
            requested_by=request.user,
            **fields,
        )
        batch = BatchUpgradeOperation.objects.annotate(**services.batch_counts()).get(pk=batch.pk)
        body = serializers.BatchUpgradeStartedSerializer(batch, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED)


@extend_schema_view(
    **{name: extend_schema(parameters=[BUILD_PARAMETER]) for name in ("list", "create", "retrieve", "destroy")}
)
class FirmwareImageViewSet(
    ParentNestedMixin,
    TenantScopedMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Images of a build, one per image type (board/target). POST uploads one (multipart: `type`, `file`; at
    most NETFLEET_FIRMWARE_MAX_IMAGE_BYTES); its size and sha256 are recorded and returned, and `file` is
    answered as the URL of `download/`, which streams the file to users who may read the build. Filter:
    `type`."""

    queryset = FirmwareImage.objects.select_related("build__category")
    serializer_class = serializers.FirmwareImageSerializer
    filterset_class = filters.FirmwareImageFilterSet
    pagination_class = ResultsPagination
    permission_read = READ
    permission_write = WRITE
    max_body_size = services.UploadLimit()

    parent_kwarg = "build_pk"
    parent_field = "build"

    def parent_queryset(self):
        return Build.objects.select_related("category").visible_to(get_access(self.request), READ)

    def get_build(self):
        return self.get_parent()

    def perform_create(self, serializer):
        serializer.instance = services.create_image(build=self.get_build(), **serializer.validated_data)

    def perform_destroy(self, instance):
        services.delete_image(image=instance)

    def finalize_response(self, request, response, *args, **kwargs):
        # errors of the download stay JSON even when the client accepts only the binary
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response, Response) and isinstance(getattr(response, "accepted_renderer", None), BinaryRenderer):
            response.accepted_renderer, response.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return response

    @extend_schema(
        parameters=[BUILD_PARAMETER, NO_FORMAT],
        request=None,
        responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, description="The image")},
        filters=False,
    )
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, BinaryRenderer], filterset_class=None)
    def download(self, request, build_pk=None, pk=None):
        image = self.get_object()
        try:
            handle = image.file.open("rb")
        except FileNotFoundError:
            raise exceptions.NotFound("The image file is missing from storage.") from None
        response = FileResponse(handle, as_attachment=True, filename=image.filename or image.type)
        response["Content-Type"] = "application/octet-stream"
        response["X-Checksum-SHA256"] = image.sha256
        response["Cache-Control"] = "private, no-store"
        return response


class UpgradeOperationViewSet(NetfleetReadOnlyModelViewSet):
    """Upgrade operations, newest first: status (`in-progress`, `success`, `failed`, `aborted`, `cancelled`),
    current step, progress 0-100 and the log. `cancel/` stops one before it starts flashing (409 after);
    `retry/` starts a new upgrade like a failed, aborted or cancelled one. Filters: `device__organization`
    (id), `device__organization_slug`, `organization` (slug), `device`, `image`, `batch`, `status`."""

    queryset = UpgradeOperation.objects.select_related("device")
    serializer_class = serializers.UpgradeOperationSerializer
    filterset_class = filters.UpgradeOperationFilterSet
    permission_read = READ
    permission_write = WRITE
    action_permissions = {"cancel": WRITE, "retry": WRITE}

    @extend_schema(request=None, responses={200: serializers.UpgradeOperationSerializer}, filters=False)
    @action(detail=True, methods=["post"], filterset_class=None)
    def cancel(self, request, pk=None):
        operation = services.cancel_upgrade(operation=self.get_object())
        return Response(self.get_serializer(operation).data)

    @extend_schema(request=None, responses={201: serializers.UpgradeOperationSerializer}, filters=False)
    @action(detail=True, methods=["post"], filterset_class=None)
    def retry(self, request, pk=None):
        operation = services.retry_upgrade(operation=self.get_object(), requested_by=request.user)
        return Response(self.get_serializer(operation).data, status=status.HTTP_201_CREATED)


class BatchUpgradeOperationViewSet(NetfleetReadOnlyModelViewSet):
    """Mass upgrades, newest first, with counts per status, "N out of M" progress and success/failure rates;
    the detail lists its upgrade operations. The status follows the operations: any in progress →
    `in-progress`, else any failed, aborted or cancelled → `failed`, else `success`. Filters: `build`,
    `status`, `organization` (slug)."""

    queryset = (
        BatchUpgradeOperation.objects.select_related("build").annotate(**services.batch_counts()).order_by("-created")
    )
    serializer_class = serializers.BatchUpgradeOperationSerializer
    filterset_class = filters.BatchUpgradeOperationFilterSet
    permission_read = READ
    permission_write = WRITE

    def get_serializer_class(self):
        if self.action == "retrieve":
            return serializers.BatchUpgradeOperationDetailSerializer
        return super().get_serializer_class()

    def get_queryset(self):
        queryset = super().get_queryset()
        return queryset.prefetch_related("operations") if self.action == "retrieve" else queryset


@extend_schema_view(
    list=extend_schema(parameters=[DEVICE_PARAMETER]), retrieve=extend_schema(parameters=[DEVICE_PARAMETER])
)
class DeviceUpgradeOperationViewSet(DeviceNestedMixin, NetfleetReadOnlyModelViewSet):
    """A device's upgrade operations, newest first. Filter: `status`."""

    queryset = UpgradeOperation.objects.select_related("device")
    serializer_class = serializers.UpgradeOperationSerializer
    filterset_class = filters.DeviceUpgradeOperationFilterSet
    permission_read = READ
    permission_write = WRITE


class DeviceFirmwareView(generics.GenericAPIView):
    """The firmware image a device is meant to run. PUT creates it when missing (201) or changes it (200); as
    in the reference system, a new or changed image starts an upgrade of the device to it right away (with
    the optional `upgrade_options`), answered in `upgrade_operation`, and `installed` becomes true once that
    upgrade succeeds. The image must fit the device's model (422 otherwise); 409 when the device cannot be
    upgraded now (no working connection, an upgrade in progress, deactivated)."""

    permission_classes = [TenantPermission]
    permission_read = READ
    permission_write = WRITE
    queryset = DeviceFirmware.objects.select_related("device", "image")
    serializer_class = serializers.DeviceFirmwareSerializer
    pagination_class = None
    filter_backends = []

    def get_device(self):
        if not hasattr(self, "_device"):
            devices = Device.objects.visible_to(get_access(self.request), self.permission_read)
            device = devices.filter(pk=_uuid_or_404(self.kwargs["pk"])).first()
            if device is None:
                raise exceptions.NotFound()
            if self.request.method not in permissions.SAFE_METHODS:
                self.check_object_permissions(self.request, device)
                if device.is_deactivated:
                    raise Conflict("The device is deactivated: its firmware cannot be changed")
            self._device = device
        return self._device

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["device"] = self.get_device()
        return context

    def get_object(self, required=True):
        device_firmware = self.get_queryset().filter(device=self.get_device()).first()
        if device_firmware is None and required:
            raise exceptions.NotFound("This device has no device firmware.")
        return device_firmware

    @extend_schema(parameters=[DEVICE_ID])
    def get(self, request, pk=None):
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(
        parameters=[DEVICE_ID],
        responses={200: serializers.DeviceFirmwareSerializer, 201: serializers.DeviceFirmwareSerializer},
    )
    def put(self, request, pk=None):
        return self._write(self.get_object(required=False), partial=False)

    @extend_schema(parameters=[DEVICE_ID])
    def patch(self, request, pk=None):
        return self._write(self.get_object(), partial=True)

    @extend_schema(parameters=[DEVICE_ID], responses={204: None})
    def delete(self, request, pk=None):
        self.get_object().delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _write(self, instance, *, partial):
        serializer = self.get_serializer(instance, data=self.request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        device_firmware, created, _ = services.set_device_firmware(
            device=self.get_device(),
            image=data.get("image", getattr(instance, "image", None)),
            upgrade_options=data.get("upgrade_options"),
            requested_by=self.request.user,
        )
        body = self.get_serializer(device_firmware).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
