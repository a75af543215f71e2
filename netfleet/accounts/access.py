"""Computes a caller's `Access` (see netfleet.core.tenancy) from memberships and roles."""

from netfleet.core.tenancy import Access

from .models import Membership
from .roles import permissions_for


def access_for_user(user) -> Access:
    if user.is_superuser:
        return Access(is_superuser=True)
    permissions, sites = {}, {}
    memberships = Membership.objects.filter(user=user, organization__is_active=True).prefetch_related("sites")
    for membership in memberships:
        org = membership.organization_id
        permissions[org] = permissions_for(membership.role)
        granted = frozenset(site.pk for site in membership.sites.all())
        sites[org] = granted or None
    return Access(permissions=permissions, sites=sites)


def resolve_access(request) -> Access:
    return access_for_user(request.user)
