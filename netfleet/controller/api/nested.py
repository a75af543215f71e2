"""Views nested under a device (`controller/device/{device_pk}/...`), for every app that adds some (connections,
firmware, monitoring alert rules)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from netfleet.controller.models import Device
from netfleet.core.api.views import ParentNestedMixin
from netfleet.core.tenancy import get_access

DEVICE_PARAMETER = OpenApiParameter("device_pk", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Device id")


class DeviceNestedMixin(ParentNestedMixin):
    """Views under `controller/device/{id}/`: the device must be visible to the caller (else 404), and writes
    need the view's write permission in the device's organization and site."""

    parent_kwarg = "device_pk"
    parent_field = "device"

    def parent_queryset(self):
        return Device.objects.visible_to(get_access(self.request), self.permission_read)

    def get_device(self):
        return self.get_parent()
