"""Viewset bases. A domain viewset declares queryset, serializer_class, filterset_class and its permission
strings; scoping, object permissions, atomic writes and the pagination shape of its surface come from here."""

from django.db import transaction
from rest_framework import mixins, viewsets

from netfleet.core.api.pagination import ItemsPagination, ResultsPagination
from netfleet.core.api.permissions import TenantPermission
from netfleet.core.tenancy import get_access


class TenantScopedMixin:
    permission_classes = [TenantPermission]
    permission_read = None
    permission_write = None

    def get_queryset(self):
        return super().get_queryset().visible_to(get_access(self.request), self.permission_read)

    def perform_create(self, serializer):
        with transaction.atomic():
            serializer.save()

    def perform_update(self, serializer):
        with transaction.atomic():
            serializer.save()

    def perform_destroy(self, instance):
        with transaction.atomic():
            instance.delete()


class NetfleetModelViewSet(TenantScopedMixin, viewsets.ModelViewSet):
    """OpenWISP-style surfaces (controller, monitoring, firmware): {count, next, previous, results} lists."""

    pagination_class = ResultsPagination


class NetfleetReadOnlyModelViewSet(TenantScopedMixin, viewsets.ReadOnlyModelViewSet):
    pagination_class = ResultsPagination


class PlatformModelViewSet(TenantScopedMixin, viewsets.ModelViewSet):
    """platform-api.txt surfaces (sites, devices, API keys): {items, total, page, per_page} lists, no PUT."""

    pagination_class = ItemsPagination
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]


class PlatformListCreateViewSet(
    TenantScopedMixin, mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    pagination_class = ItemsPagination
