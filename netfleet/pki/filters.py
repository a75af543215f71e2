import django_filters
from django.db.models import Q
from django_filters.widgets import BooleanWidget

from netfleet.core.filters import NetfleetFilterSet

from .choices import Digest, KeyType
from .models import Ca, Cert


class X509FilterSet(NetfleetFilterSet):
    organization = django_filters.UUIDFilter(field_name="organization_id", label="Organization (ID)")
    organization_slug = django_filters.CharFilter(field_name="organization__slug", label="Organization (slug)")
    key_type = django_filters.ChoiceFilter(choices=KeyType.choices)
    digest = django_filters.ChoiceFilter(choices=Digest.choices)
    common_name = django_filters.CharFilter()

    def apply_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(common_name__icontains=value))


class CaFilterSet(X509FilterSet):
    class Meta:
        model = Ca
        fields = ("organization", "organization_slug", "key_type", "digest", "common_name")


class CertFilterSet(X509FilterSet):
    ca = django_filters.UUIDFilter(field_name="ca_id", label="CA (ID)")
    revoked = django_filters.BooleanFilter(widget=BooleanWidget)

    class Meta:
        model = Cert
        fields = ("organization", "organization_slug", "key_type", "digest", "common_name", "ca", "revoked")
