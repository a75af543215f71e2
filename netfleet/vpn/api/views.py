from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import renderers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from netfleet.core.api.renderers import JSONRenderer
from netfleet.core.api.views import NetfleetModelViewSet

from .. import filters, services
from ..models import IpAddress, Subnet, Vpn
from . import serializers


class ArchiveRenderer(renderers.BaseRenderer):
    """Lets clients ask for `Accept: application/gzip` (the download answers with an HttpResponse)."""

    media_type = "application/gzip"
    format = "tar.gz"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class VpnViewSet(NetfleetModelViewSet):
    """VPN servers (OpenVPN, WireGuard, VXLAN over WireGuard). OpenVPN servers get a CA and server certificate
    when none is given, and DH parameters generated in the background (`dh` is empty until then; the server
    runs ECDHE-only meanwhile). WireGuard servers get a generated key pair (only the public key is shown) and
    need a subnet. With a subnet the server takes its first free address. `configuration/` downloads the
    server configuration (tar.gz rendered by netjsonconfig) with its peers."""

    queryset = Vpn.objects.select_related("ip", "subnet")
    serializer_class = serializers.VpnSerializer
    filterset_class = filters.VpnFilterSet
    permission_read = "device:read"
    permission_write = "vpn:write"

    def perform_create(self, serializer):
        serializer.instance = services.create_vpn(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.update_vpn(vpn=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.delete_vpn(vpn=instance)

    def finalize_response(self, request, response, *args, **kwargs):
        # error answers stay JSON even when the client accepts only application/gzip
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response, Response) and isinstance(getattr(response, "accepted_renderer", None), ArchiveRenderer):
            response.accepted_renderer, response.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return response

    @extend_schema(
        responses={(200, "application/gzip"): OpenApiResponse(OpenApiTypes.BINARY, description="tar.gz archive")}
    )
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, ArchiveRenderer])
    def configuration(self, request, pk=None):
        vpn = self.get_object()
        response = HttpResponse(services.render_vpn_archive(vpn=vpn), content_type="application/gzip")
        response["Content-Disposition"] = f'attachment; filename="{vpn.name}.tar.gz"'
        return response


class SubnetViewSet(NetfleetModelViewSet):
    """IP pools. Subnets of an organization never overlap (422). `ip-address/` lists the allocated addresses;
    POST there allocates one (the lowest free address unless `ip_address` is given): a taken address or an
    exhausted pool is a 409."""

    queryset = Subnet.objects.all()
    serializer_class = serializers.SubnetSerializer
    filterset_class = filters.SubnetFilterSet
    permission_read = "device:read"
    permission_write = "network:write"

    def perform_create(self, serializer):
        serializer.instance = services.save_subnet(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.save_subnet(instance=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.delete_subnet(subnet=instance)

    def get_serializer_class(self):
        if self.action == "ip_address":
            return serializers.IpAddressSerializer
        return super().get_serializer_class()

    @extend_schema(responses={200: serializers.IpAddressSerializer(many=True), 201: serializers.IpAddressSerializer})
    @action(detail=True, methods=["get", "post"], url_path="ip-address", filterset_class=None)
    def ip_address(self, request, pk=None):
        subnet = self.get_object()
        if request.method == "POST":
            data = self.get_serializer(data=request.data)
            data.is_valid(raise_exception=True)
            ip = services.allocate_ip(
                subnet=subnet,
                ip_address=data.validated_data.get("ip_address"),
                description=data.validated_data.get("description", ""),
            )
            return Response(self.get_serializer(ip).data, status=status.HTTP_201_CREATED)
        addresses = IpAddress.objects.filter(subnet=subnet).order_by("created", "pk")
        page = self.paginate_queryset(addresses)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)
