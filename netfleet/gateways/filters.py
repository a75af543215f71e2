import django_filters
from django.db.models import Q

from netfleet.core.filters import NetfleetFilterSet

from .models import Gateway


class GatewayFilterSet(NetfleetFilterSet):
    organization_id = django_filters.UUIDFilter(field_name="organization_id", label="Organization (ID)")
    organization = django_filters.CharFilter(field_name="organization__slug", label="Organization (slug)")
    site_id = django_filters.UUIDFilter(field_name="site_id", label="Site (ID)")
    site = django_filters.CharFilter(field_name="site__slug", label="Site (slug)")

    class Meta:
        model = Gateway
        fields = ("id", "name", "host", "port", "use_https", "is_online")

    def apply_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(host__icontains=value))
