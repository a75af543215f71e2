import django_filters
from django.db.models import Q

from netfleet.core.filters import NetfleetFilterSet

from .models import Package


class PackageFilterSet(NetfleetFilterSet):
    router_id = django_filters.NumberFilter(field_name="router_id", label="Router (ID)")
    router = django_filters.CharFilter(field_name="router__name", label="Router (name)")

    class Meta:
        model = Package
        fields = ("id", "name", "package_type", "is_active", "sync_state")

    def apply_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))
