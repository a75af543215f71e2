import uuid

import django_filters
from django.db.models import Q

from netfleet.core.filters import NetfleetFilterSet

from .choices import BatchStatus, UpgradeStatus
from .models import BatchUpgradeOperation, Build, Category, FirmwareImage, UpgradeOperation


class OrganizationSlugFilterMixin(django_filters.FilterSet):
    """`organization`: the organization's slug, as firmware-api.txt filters (its id is accepted too)."""

    organization_path = "organization"
    organization = django_filters.CharFilter(method="filter_organization", label="Organization (slug or ID)")

    def filter_organization(self, queryset, name, value):
        try:
            return queryset.filter(**{f"{self.organization_path}_id": uuid.UUID(value)})
        except ValueError:
            return queryset.filter(**{f"{self.organization_path}__slug": value})


class CategoryFilterSet(OrganizationSlugFilterMixin, NetfleetFilterSet):
    name = django_filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = Category
        fields = ("organization", "name")

    def apply_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))


class BuildFilterSet(OrganizationSlugFilterMixin, NetfleetFilterSet):
    organization_path = "category__organization"
    category = django_filters.UUIDFilter(field_name="category_id", label="Category (ID)")
    version = django_filters.CharFilter(label="Version")
    os = django_filters.CharFilter(label="OS identifier")

    class Meta:
        model = Build
        fields = ("organization", "category", "version", "os")

    def apply_search(self, queryset, name, value):
        return queryset.filter(Q(version__icontains=value) | Q(os__icontains=value) | Q(changelog__icontains=value))


class FirmwareImageFilterSet(NetfleetFilterSet):
    type = django_filters.CharFilter(label="Image type")

    class Meta:
        model = FirmwareImage
        fields = ("type",)


class UpgradeOperationFilterSet(OrganizationSlugFilterMixin, NetfleetFilterSet):
    organization_path = "device__organization"
    device__organization = django_filters.UUIDFilter(field_name="device__organization_id", label="Organization (ID)")
    device__organization_slug = django_filters.CharFilter(
        field_name="device__organization__slug", label="Organization (slug)"
    )
    # the spec's example spells it with a double underscore as well
    device__organization__slug = django_filters.CharFilter(
        field_name="device__organization__slug", label="Organization (slug)"
    )
    device = django_filters.UUIDFilter(field_name="device_id", label="Device (ID)")
    image = django_filters.UUIDFilter(field_name="image_id", label="Firmware image (ID)")
    batch = django_filters.UUIDFilter(field_name="batch_id", label="Mass upgrade (ID)")
    status = django_filters.ChoiceFilter(choices=UpgradeStatus.choices)

    class Meta:
        model = UpgradeOperation
        fields = (
            "organization",
            "device__organization",
            "device__organization_slug",
            "device__organization__slug",
            "device",
            "image",
            "batch",
            "status",
        )


class DeviceUpgradeOperationFilterSet(NetfleetFilterSet):
    status = django_filters.ChoiceFilter(choices=UpgradeStatus.choices)

    class Meta:
        model = UpgradeOperation
        fields = ("status",)


class BatchUpgradeOperationFilterSet(OrganizationSlugFilterMixin, NetfleetFilterSet):
    build = django_filters.UUIDFilter(field_name="build_id", label="Firmware build (ID)")
    status = django_filters.ChoiceFilter(choices=BatchStatus.choices)

    class Meta:
        model = BatchUpgradeOperation
        fields = ("organization", "build", "status")
