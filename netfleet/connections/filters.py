import django_filters
from django.db.models import Q

from netfleet.core.filters import NetfleetFilterSet

from .choices import CommandStatus, Connector, UpdateStrategy
from .models import Command, Credentials, DeviceConnection


class CredentialsFilterSet(NetfleetFilterSet):
    organization = django_filters.UUIDFilter(field_name="organization_id", label="Organization (ID)")
    organization_slug = django_filters.CharFilter(field_name="organization__slug", label="Organization (slug)")
    connector = django_filters.ChoiceFilter(choices=Connector.choices)

    class Meta:
        model = Credentials
        fields = ("id", "name", "connector", "auto_add")

    def apply_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value))


class DeviceConnectionFilterSet(NetfleetFilterSet):
    update_strategy = django_filters.ChoiceFilter(choices=UpdateStrategy.choices)

    class Meta:
        model = DeviceConnection
        fields = ("id", "credentials", "update_strategy", "enabled", "is_working")


class CommandFilterSet(NetfleetFilterSet):
    status = django_filters.ChoiceFilter(choices=CommandStatus.choices)

    class Meta:
        model = Command
        fields = ("id", "type", "status")

    def apply_search(self, queryset, name, value):
        return queryset.filter(Q(type__icontains=value) | Q(output__icontains=value))
