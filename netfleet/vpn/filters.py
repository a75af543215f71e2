import django_filters
from django.db.models import Q

from netfleet.core.filters import NetfleetFilterSet

from .choices import VpnBackend
from .models import Subnet, Vpn


class VpnFilterSet(NetfleetFilterSet):
    backend = django_filters.ChoiceFilter(choices=VpnBackend.choices)
    subnet = django_filters.UUIDFilter(field_name="subnet_id", label="Subnet (ID)")
    organization = django_filters.UUIDFilter(field_name="organization_id", label="Organization (ID)")
    organization_slug = django_filters.CharFilter(field_name="organization__slug", label="Organization (slug)")

    class Meta:
        model = Vpn
        fields = ("backend", "subnet", "organization", "organization_slug")

    def apply_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(host__icontains=value))


class SubnetFilterSet(NetfleetFilterSet):
    organization = django_filters.UUIDFilter(field_name="organization_id", label="Organization (ID)")
    organization_slug = django_filters.CharFilter(field_name="organization__slug", label="Organization (slug)")
    version = django_filters.NumberFilter()

    class Meta:
        model = Subnet
        fields = ("organization", "organization_slug", "version")

    def apply_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(subnet__icontains=value))
