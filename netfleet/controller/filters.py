import django_filters
from django.db.models import Q
from django_filters.widgets import BooleanWidget

from netfleet.core.filters import NetfleetFilterSet

from .choices import ConfigBackend, ConfigStatus, TemplateType
from .models import Device, DeviceGroup, Template


class CreatedFilterSetMixin(django_filters.FilterSet):
    created = django_filters.IsoDateTimeFilter(label="Created (exact)")
    created__gte = django_filters.IsoDateTimeFilter(field_name="created", lookup_expr="gte", label="Created since")
    created__lt = django_filters.IsoDateTimeFilter(field_name="created", lookup_expr="lt", label="Created before")


class DeviceFilterSet(CreatedFilterSetMixin, NetfleetFilterSet):
    """Filters of both device faces: the controller's (controller-api.txt) and the platform's (`site_id`, ...)."""

    config__status = django_filters.ChoiceFilter(choices=ConfigStatus.choices, label="Configuration status")
    status = django_filters.ChoiceFilter(
        field_name="config__status", choices=ConfigStatus.choices, label="Configuration status"
    )
    config__backend = django_filters.ChoiceFilter(choices=ConfigBackend.choices, label="Configuration backend")
    config__templates = django_filters.UUIDFilter(label="Template (ID)")
    organization = django_filters.UUIDFilter(field_name="organization_id", label="Organization (ID)")
    organization_id = django_filters.UUIDFilter(label="Organization (ID)")
    organization_slug = django_filters.CharFilter(field_name="organization__slug", label="Organization (slug)")
    group = django_filters.UUIDFilter(field_name="group_id", label="Group (ID)")
    site_id = django_filters.UUIDFilter(label="Site (ID)")
    with_geo = django_filters.BooleanFilter(method="filter_with_geo", widget=BooleanWidget, label="Has a location")
    name = django_filters.CharFilter(lookup_expr="iexact")
    mac_address = django_filters.CharFilter(lookup_expr="iexact")
    model = django_filters.CharFilter(lookup_expr="iexact")
    is_deactivated = django_filters.BooleanFilter(widget=BooleanWidget)

    class Meta:
        model = Device
        fields = (
            "config__status",
            "status",
            "config__backend",
            "config__templates",
            "organization",
            "organization_id",
            "organization_slug",
            "group",
            "site_id",
            "with_geo",
            "name",
            "mac_address",
            "model",
            "is_deactivated",
            "created",
            "created__gte",
            "created__lt",
        )

    def filter_with_geo(self, queryset, name, value):
        # A device's location (geo.DeviceLocation, reverse name `devicelocation`) belongs to the geo app, which
        # builds on the controller (never the reverse): filter through the relation when geo is installed.
        # Without it no device has a location: `true` matches nothing and `false` every device.
        if not any(field.name == "devicelocation" for field in Device._meta.get_fields()):
            return queryset.none() if value else queryset
        return queryset.filter(devicelocation__isnull=not value)

    def apply_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(mac_address__icontains=value))


class TemplateFilterSet(CreatedFilterSetMixin, NetfleetFilterSet):
    organization = django_filters.UUIDFilter(field_name="organization_id", label="Organization (ID)")
    organization_slug = django_filters.CharFilter(field_name="organization__slug", label="Organization (slug)")
    backend = django_filters.ChoiceFilter(choices=ConfigBackend.choices)
    type = django_filters.ChoiceFilter(choices=TemplateType.choices)
    default = django_filters.BooleanFilter(widget=BooleanWidget)
    required = django_filters.BooleanFilter(widget=BooleanWidget)

    class Meta:
        model = Template
        fields = (
            "organization",
            "organization_slug",
            "backend",
            "type",
            "default",
            "required",
            "created",
            "created__gte",
            "created__lt",
        )

    def apply_search(self, queryset, name, value):
        return queryset.filter(name__icontains=value)


class DeviceGroupFilterSet(NetfleetFilterSet):
    organization = django_filters.UUIDFilter(field_name="organization_id", label="Organization (ID)")
    organization_slug = django_filters.CharFilter(field_name="organization__slug", label="Organization (slug)")
    empty = django_filters.BooleanFilter(method="filter_empty", widget=BooleanWidget, label="Has no devices")

    class Meta:
        model = DeviceGroup
        fields = ("organization", "organization_slug", "empty")

    def filter_empty(self, queryset, name, value):
        with_devices = Device.objects.filter(group_id__isnull=False).values("group_id")
        return queryset.exclude(pk__in=with_devices) if value else queryset.filter(pk__in=with_devices)

    def apply_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))
