from netfleet.core.api.views import PlatformModelViewSet

from .. import filters
from ..models import Site
from . import serializers


class SiteViewSet(PlatformModelViewSet):
    queryset = Site.objects.select_related("organization")
    serializer_class = serializers.SiteSerializer
    filterset_class = filters.SiteFilterSet
    permission_read = "device:read"
    permission_write = "controller:write"
