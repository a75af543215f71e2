"""Viewset bases. A domain viewset declares queryset, serializer_class, filterset_class and its permission
strings; scoping, object permissions, atomic writes and the pagination shape of its surface come from here."""

import uuid

from django.db import transaction
from rest_framework import exceptions, mixins, permissions, viewsets

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


class ParentNestedMixin:
    """Views under a parent object's URL (`.../{parent_kwarg}/...`): the parent must be visible to the caller
    (else 404, as for a malformed id), writes need the view's write permission on it, the queryset holds only
    its children (`parent_field`) and serializers find it in their context under `parent_field`.
    Subclasses set `parent_kwarg`, `parent_field` and `parent_queryset()`."""

    parent_kwarg = None
    parent_field = None

    def parent_queryset(self):
        raise NotImplementedError

    def get_parent(self):
        if not hasattr(self, "_parent"):
            try:
                pk = uuid.UUID(str(self.kwargs[self.parent_kwarg]))  # with or without dashes
            except ValueError:
                raise exceptions.NotFound() from None
            parent = self.parent_queryset().filter(pk=pk).first()
            if parent is None:
                raise exceptions.NotFound()
            if self.request.method not in permissions.SAFE_METHODS:
                self.check_object_permissions(self.request, parent)
            self._parent = parent
        return self._parent

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return super().get_queryset().none()
        return super().get_queryset().filter(**{self.parent_field: self.get_parent()})

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False) and self.parent_kwarg in self.kwargs:
            context[self.parent_field] = self.get_parent()
        return context


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
