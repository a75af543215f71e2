from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from netfleet.core.api.views import NetfleetModelViewSet, TenantScopedMixin
from netfleet.gateways.api.serializers import MessageSerializer
from netfleet.gateways.api.views import FAILURE_RESPONSES, RoutersFaceMixin
from netfleet.gateways.choices import GatewayVendor
from netfleet.gateways.models import Gateway

from .. import filters, services
from ..models import Package
from . import serializers as api_serializers


class DeletionMessageMixin:
    """`/api/v1/` answers a deletion with 204; the routers face with 200 and a message (routers-api.txt)."""

    def deleted(self, message):
        return Response(status=status.HTTP_204_NO_CONTENT)


class RoutersFaceDeletionMixin(RoutersFaceMixin):
    def deleted(self, message):
        return Response({"message": message})


class PackageViewSet(DeletionMessageMixin, NetfleetModelViewSet):
    """Hotspot packages. Creating, changing or deactivating one syncs it to its router as a hotspot user profile
    (`rate-limit` "{upload}M/{download}M", `session-timeout`, `shared-users`); `sync_state` and `sync_error` tell
    how that went (the package is saved either way). Deleting one removes the profile, best effort."""

    queryset = Package.objects.select_related("router__organization__hotspot_settings")
    serializer_class = api_serializers.PackageSerializer
    filterset_class = filters.PackageFilterSet
    permission_read = "device:read"
    permission_write = "network:write"
    lookup_value_regex = r"\d+"

    def perform_create(self, serializer):
        serializer.instance = services.create_package(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.update_package(package=serializer.instance, **serializer.validated_data)

    @extend_schema(responses={200: MessageSerializer, 204: None})
    def destroy(self, request, *args, **kwargs):
        package = self.get_object()
        services.delete_package(package=package)
        return self.deleted(f'Package "{package.name}" has been successfully deleted')


class PackageFaceViewSet(RoutersFaceDeletionMixin, PackageViewSet):
    pass


SESSION_ID = OpenApiParameter("session_id", str, OpenApiParameter.PATH, description="RouterOS id such as *1A")
CODE = OpenApiParameter("code", str, OpenApiParameter.PATH, description="The voucher code")


class RouterHotspotSchema(AutoSchema):
    def get_operation_id(self):
        # `/routers/{id}/packages/` and `/routers/packages/{id}/` would otherwise share an operationId
        operation_id = super().get_operation_id()
        return operation_id.replace("_packages_", "_router_packages_") if "{id}/packages" in self.path else operation_id


class RouterHotspotViewSet(DeletionMessageMixin, TenantScopedMixin, viewsets.GenericViewSet):
    """A router's hotspot: its active packages, vouchers (hotspot users made for a package) and active sessions.
    Reading needs `device:read`; making and revoking vouchers and kicking sessions `network:write`."""

    queryset = Gateway.objects.filter(vendor=GatewayVendor.MIKROTIK).select_related("organization")
    serializer_class = api_serializers.RouterPackagesSerializer
    permission_read = "device:read"
    permission_write = "network:write"
    lookup_value_regex = r"\d+"
    pagination_class = None
    filter_backends = []
    schema = RouterHotspotSchema()

    @extend_schema(responses={200: api_serializers.RouterPackagesSerializer})
    @action(detail=True, methods=["get"])
    def packages(self, request, pk=None):
        router = self.get_object()
        packages = router.packages.filter(is_active=True).select_related("router__organization__hotspot_settings")
        data = api_serializers.RouterPackageSerializer(packages, many=True).data
        return Response(
            {
                "router_id": router.pk,
                "router_name": router.name,
                "packages": data,
                "message": f"Found {len(data)} active packages for {router.name}",
            }
        )

    @extend_schema(responses={200: api_serializers.VoucherListSerializer, **FAILURE_RESPONSES})
    @action(detail=True, methods=["get"])
    def vouchers(self, request, pk=None):
        router = self.get_object()
        vouchers = services.list_vouchers(router=router)
        data = api_serializers.VoucherSerializer(vouchers, many=True).data
        return Response({"router_id": router.pk, "vouchers": data, "message": f"Found {len(data)} vouchers"})

    @extend_schema(
        request=api_serializers.VoucherCreateSerializer,
        responses={201: api_serializers.VoucherListSerializer, **FAILURE_RESPONSES},
    )
    @vouchers.mapping.post
    def create_vouchers(self, request, pk=None):
        router = self.get_object()
        data = api_serializers.VoucherCreateSerializer(
            data=request.data, router=router, max_count=services.max_vouchers()
        )
        data.is_valid(raise_exception=True)
        vouchers = services.create_vouchers(router=router, **data.validated_data)
        rows = [
            {
                "code": v.code,
                "package_id": v.package_id,
                "package_name": v.package.name,
                "limit_uptime": v.limit_uptime,
                "limit_bytes_total": v.limit_bytes_total,
                "created_at": v.created,
            }  # fmt: skip
            for v in vouchers
        ]
        body = {
            "router_id": router.pk,
            "vouchers": api_serializers.VoucherSerializer(rows, many=True).data,
            "message": f"Created {len(rows)} vouchers for {data.validated_data['package'].name}",
        }
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[CODE], request=None, responses={200: MessageSerializer, 204: None})
    @action(detail=True, methods=["delete"], url_path=r"vouchers/(?P<code>[A-Za-z0-9_-]{1,64})")
    def revoke_voucher(self, request, pk=None, code=None):
        services.revoke_voucher(router=self.get_object(), code=code)
        return self.deleted(f'Voucher "{code}" has been revoked')

    @extend_schema(responses={200: api_serializers.SessionListSerializer, **FAILURE_RESPONSES})
    @action(detail=True, methods=["get"])
    def sessions(self, request, pk=None):
        router = self.get_object()
        sessions = services.list_sessions(router=router)
        return Response(
            {"router_id": router.pk, "sessions": sessions, "message": f"Found {len(sessions)} active sessions"}
        )

    @extend_schema(parameters=[SESSION_ID], request=None, responses={200: MessageSerializer, 204: None})
    @action(detail=True, methods=["delete"], url_path=r"sessions/(?P<session_id>[^/]{1,32})")
    def kick_session(self, request, pk=None, session_id=None):
        services.kick_session(router=self.get_object(), session_id=session_id)
        return self.deleted(f"Session {session_id} has been disconnected")


class RouterHotspotFaceViewSet(RoutersFaceDeletionMixin, RouterHotspotViewSet):
    pass
