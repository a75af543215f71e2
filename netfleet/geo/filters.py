import django_filters
from django.db.models import Q
from django_filters.widgets import BooleanWidget

from netfleet.core.filters import NetfleetFilterSet

from .choices import LocationType
from .models import FloorPlan, Location


class OrganizationFilterSetMixin(django_filters.FilterSet):
    organization = django_filters.UUIDFilter(field_name="organization_id", label="Organization (ID)")
    organization_id = django_filters.UUIDFilter(label="Organization (ID)")
    organization_slug = django_filters.CharFilter(field_name="organization__slug", label="Organization (slug)")


class LocationFilterSet(OrganizationFilterSetMixin, NetfleetFilterSet):
    type = django_filters.ChoiceFilter(choices=LocationType.choices)
    is_mobile = django_filters.BooleanFilter(widget=BooleanWidget)

    class Meta:
        model = Location
        fields = ("organization", "organization_id", "organization_slug", "type", "is_mobile")

    def apply_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(address__icontains=value))


class GeoJSONLocationFilterSet(OrganizationFilterSetMixin, NetfleetFilterSet):
    class Meta:
        model = Location
        fields = ("organization", "organization_id", "organization_slug")

    def apply_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(address__icontains=value))


class FloorPlanFilterSet(OrganizationFilterSetMixin, NetfleetFilterSet):
    location = django_filters.UUIDFilter(field_name="location_id", label="Location (ID)")
    location_id = django_filters.UUIDFilter(label="Location (ID)")
    floor = django_filters.NumberFilter()

    class Meta:
        model = FloorPlan
        fields = ("organization", "organization_id", "organization_slug", "location", "location_id", "floor")

    def apply_search(self, queryset, name, value):
        return queryset.filter(location__name__icontains=value)
