import django_filters
from django.db.models import Q

from netfleet.core.filters import NetfleetFilterSet

from .models import AuditAction, AuditEvent, Membership, Organization, Site, User
from .roles import Role


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


class OrganizationFilterSet(NetfleetFilterSet):
    slug = django_filters.CharFilter()
    name = django_filters.CharFilter(lookup_expr="iexact")
    is_active = django_filters.BooleanFilter()

    class Meta:
        model = Organization
        fields = ("slug", "name", "is_active")

    def apply_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(slug__icontains=value))


class UserFilterSet(NetfleetFilterSet):
    organization_id = django_filters.UUIDFilter(field_name="memberships__organization_id")
    organization = django_filters.CharFilter(field_name="memberships__organization__slug")
    username = django_filters.CharFilter()
    email = django_filters.CharFilter(lookup_expr="iexact")
    is_active = django_filters.BooleanFilter()
    is_superuser = django_filters.BooleanFilter()

    class Meta:
        model = User
        fields = ("organization_id", "organization", "username", "email", "is_active", "is_superuser")

    def apply_search(self, queryset, name, value):
        return queryset.filter(
            Q(username__icontains=value)
            | Q(email__icontains=value)
            | Q(first_name__icontains=value)
            | Q(last_name__icontains=value)
        )


class MembershipFilterSet(NetfleetFilterSet):
    role = django_filters.ChoiceFilter(choices=Role.choices)
    user_id = django_filters.UUIDFilter()
    site_id = django_filters.UUIDFilter(field_name="sites__id")

    class Meta:
        model = Membership
        fields = ("role", "user_id", "site_id")

    def apply_search(self, queryset, name, value):
        return queryset.filter(Q(user__username__icontains=value) | Q(user__email__icontains=value))


class AuditEventFilterSet(NetfleetFilterSet):
    action = django_filters.MultipleChoiceFilter(choices=AuditAction.choices)
    organization_id = django_filters.UUIDFilter()
    actor_id = django_filters.UUIDFilter()
    target_type = django_filters.CharFilter()
    target_id = django_filters.CharFilter()
    since = django_filters.IsoDateTimeFilter(field_name="created", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created", lookup_expr="lte")

    class Meta:
        model = AuditEvent
        fields = ("action", "organization_id", "actor_id", "target_type", "target_id", "since", "until")

    def apply_search(self, queryset, name, value):
        return queryset.filter(Q(actor_label__icontains=value) | Q(target_id=value) | Q(request_id=value))
