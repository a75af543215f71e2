import django_filters
from django.db.models import Q

from netfleet.core.filters import NetfleetFilterSet

from .models import Site


class SiteFilterSet(NetfleetFilterSet):
    site_id = django_filters.UUIDFilter(field_name="id")
    organization_id = django_filters.UUIDFilter(field_name="organization_id")
    organization = django_filters.CharFilter(field_name="organization__slug")
    slug = django_filters.CharFilter()
    name = django_filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = Site
        fields = ("site_id", "organization_id", "organization", "slug", "name")

    def apply_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(slug__icontains=value) | Q(description__icontains=value))
