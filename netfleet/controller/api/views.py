import uuid

from django.db import transaction
from django.db.models import Prefetch
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, mixins, renderers, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from netfleet.accounts.models import Organization
from netfleet.core.api.exceptions import QueryValidationError
from netfleet.core.api.pagination import CountedRows, ItemsPagination
from netfleet.core.api.permissions import TenantPermission
from netfleet.core.api.renderers import JSONRenderer
from netfleet.core.api.views import NetfleetModelViewSet, TenantScopedMixin
from netfleet.core.sql import json_array_of
from netfleet.core.tenancy import get_access

from .. import filters, rendering, services
from ..models import Device, DeviceGroup, Template
from . import serializers as api_serializers

ARCHIVE_RESPONSE = {(200, "application/gzip"): OpenApiResponse(OpenApiTypes.BINARY, description="tar.gz archive")}
NO_FORMAT = OpenApiParameter("format", exclude=True)  # the download is always the archive


class ArchiveRenderer(renderers.BaseRenderer):
    """Lets clients ask for `Accept: application/gzip` (the downloads answer with an HttpResponse)."""

    media_type = "application/gzip"
    format = "tar.gz"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class ArchiveDownloadMixin:
    """Error answers of the archive downloads stay JSON even when the client accepts only application/gzip."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response, Response) and isinstance(getattr(response, "accepted_renderer", None), ArchiveRenderer):
            response.accepted_renderer, response.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return response


def archive_response(archive, name):
    response = HttpResponse(archive, content_type="application/gzip")
    response["Content-Disposition"] = f'attachment; filename="{name}.tar.gz"'
    return response


def query_flag(request, name):
    """A boolean query parameter (true/false/1/0...); a bad value is a 422 naming it."""
    try:
        return serializers.BooleanField().to_internal_value(request.query_params.get(name, "false"))
    except serializers.ValidationError as exc:
        raise QueryValidationError({name: exc.detail}) from None


class DeviceViewSet(ArchiveDownloadMixin, NetfleetModelViewSet):
    """Devices and their configuration (`config`: backend, NetJSON, variables and ordered templates).

    PATCH `{"config": {"templates": [ids]}}` assigns, unassigns and reorders templates; the organization's
    required templates are always kept (removing one is a 422). A device in a group also gets the group's
    templates, after its own.

    DELETE: a device whose configuration is active answers 409. Deactivate it first (POST `deactivate/`:
    the config goes `deactivating`, the agent removes its configuration and reports `deactivated`), or pass
    `?force=true` to delete it at once.
    """

    queryset = Device.objects.select_related("config")
    serializer_class = api_serializers.DeviceSerializer
    filterset_class = filters.DeviceFilterSet
    permission_read = "device:read"
    permission_write = "device:write"

    def list(self, request, *args, **kwargs):
        devices = self.filter_queryset(self.get_queryset())
        rows = CountedRows(devices.values_list("pk"), api_serializers.device_list_page)
        return self.get_paginated_response(json_array_of(self.paginate_queryset(rows)))

    def perform_create(self, serializer):
        device = services.create_device_with_group_templates(**serializer.validated_data)
        serializer.instance = self.reload(device)

    def perform_update(self, serializer):
        device = services.update_device_with_group_templates(device=serializer.instance, **serializer.validated_data)
        serializer.instance = self.reload(device)

    def reload(self, device):
        """The device as stored after the service ran (status, templates) with what its representation needs."""
        return self.queryset.all().get(pk=device.pk)

    @extend_schema(
        parameters=[OpenApiParameter("force", bool, description="Delete even if the device is active")],
        responses={204: None},
    )
    def destroy(self, request, *args, **kwargs):
        return super().destroy(request, *args, **kwargs)

    def perform_destroy(self, instance):
        services.delete_device(device=instance, force=query_flag(self.request, "force"))

    @extend_schema(request=None, responses=api_serializers.DeviceSerializer)
    @action(detail=True, methods=["post"])
    def deactivate(self, request, pk=None):
        device = services.deactivate_device(device=self.get_object())
        return Response(self.get_serializer(self.reload(device)).data)

    @extend_schema(request=None, responses=api_serializers.DeviceSerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        device = services.activate_device(device=self.get_object())
        return Response(self.get_serializer(self.reload(device)).data)

    @extend_schema(responses=ARCHIVE_RESPONSE, parameters=[NO_FORMAT])
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, ArchiveRenderer])
    def configuration(self, request, pk=None):
        device = self.get_object()
        return archive_response(services.render_device_archive(device=device), device.name)


class TemplateViewSet(ArchiveDownloadMixin, NetfleetModelViewSet):
    """Configuration templates. Shared templates (no organization) are readable by everyone and writable by
    superusers only. Saving a template re-renders the configs that use it (directly or through a group)."""

    queryset = Template.objects.all()
    serializer_class = api_serializers.TemplateSerializer
    filterset_class = filters.TemplateFilterSet
    permission_read = "device:read"
    permission_write = "network:write"

    @transaction.atomic
    def perform_create(self, serializer):
        serializer.instance = services.create_template(**serializer.validated_data)
        serializer.save_extensions(serializer.instance)

    @transaction.atomic
    def perform_update(self, serializer):
        serializer.instance = services.update_template(template=serializer.instance, **serializer.validated_data)
        serializer.save_extensions(serializer.instance)

    def perform_destroy(self, instance):
        services.delete_template(template=instance)

    @extend_schema(responses=ARCHIVE_RESPONSE, parameters=[NO_FORMAT])
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, ArchiveRenderer])
    def configuration(self, request, pk=None):
        template = self.get_object()
        return archive_response(rendering.render_template_archive(template), template.name)


class DeviceGroupViewSet(NetfleetModelViewSet):
    """Device groups: shared variables (`context`), `meta_data` and templates applied to every member."""

    queryset = DeviceGroup.objects.prefetch_related(Prefetch("templates", queryset=Template.objects.only("id")))
    serializer_class = api_serializers.DeviceGroupSerializer
    filterset_class = filters.DeviceGroupFilterSet
    permission_read = "device:read"
    permission_write = "device:write"

    def perform_create(self, serializer):
        serializer.instance = services.create_group(**serializer.validated_data)

    def perform_update(self, serializer):
        group = services.update_group(group=serializer.instance, **serializer.validated_data)
        serializer.instance = self.queryset.all().get(pk=group.pk)

    def perform_destroy(self, instance):
        services.delete_group(group=instance)


class CertificateGroupView(generics.GenericAPIView):
    """The device group of the device whose VPN client certificate has this common name."""

    permission_classes = [TenantPermission]
    permission_read = "device:read"
    serializer_class = api_serializers.DeviceGroupSerializer
    pagination_class = None
    filter_backends = []

    @extend_schema(
        parameters=[OpenApiParameter("org", str, description="Comma-separated slugs of the certificate's organization")]
    )
    def get(self, request, common_name):
        slugs = [slug for slug in request.query_params.get("org", "").split(",") if slug]
        groups = DeviceGroup.objects.visible_to(get_access(request), self.permission_read)
        group = services.group_for_certificate(common_name=common_name, organization_slugs=slugs, groups=groups)
        if group is None:
            raise exceptions.NotFound(f"No device group for certificate {common_name!r}")
        return Response(self.get_serializer(group).data)


class OrganizationConfigSettingsView(generics.RetrieveUpdateAPIView):
    """An organization's controller settings. `shared_secret` (what devices register with) is shown only to
    organization administrators (`user:admin`) and superusers; PATCH `{"regenerate_shared_secret": true}`
    replaces it (also `user:admin`). `device_limit` is set by superusers. New `context` variables re-render
    every configuration of the organization."""

    permission_classes = [TenantPermission]
    permission_read = "device:read"
    permission_write = "controller:write"
    serializer_class = api_serializers.OrganizationConfigSettingsSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def get_object(self):
        access = get_access(self.request)
        try:
            organization_id = uuid.UUID(str(self.kwargs["organization_id"]))
        except ValueError:
            raise exceptions.NotFound() from None
        if not (access.is_superuser or organization_id in access.organization_ids(self.permission_read)):
            raise exceptions.NotFound()
        organization = Organization.objects.filter(pk=organization_id).first()
        if organization is None:
            raise exceptions.NotFound()
        settings_row = services.organization_settings(organization)
        self.check_object_permissions(self.request, settings_row)
        return settings_row

    def perform_update(self, serializer):
        serializer.instance = services.update_organization_settings(
            settings_row=serializer.instance, **serializer.validated_data
        )


class PlatformDeviceViewSet(
    TenantScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Devices on the platform surface (platform-api.txt): `{items, total, page, per_page}` lists with
    `site_id`, `organization_id` and `search` filters."""

    queryset = Device.objects.select_related("config")
    serializer_class = api_serializers.PlatformDeviceSerializer
    filterset_class = filters.DeviceFilterSet
    pagination_class = ItemsPagination
    permission_read = "device:read"
