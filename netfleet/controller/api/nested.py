"""Views nested under a device (`controller/device/{device_pk}/...`), for every app that adds some (connections,
firmware, monitoring alert rules)."""

import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, permissions

from netfleet.controller.models import Device
from netfleet.core.tenancy import get_access

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
