"""Computes a caller's `Access` (see netfleet.core.tenancy) from memberships, roles and API-key scope."""

from netfleet.core.tenancy import Access

from .models import Membership, Organization
from .roles import ALL_PERMISSIONS, permissions_for


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


def narrow_to_api_key(access: Access, key) -> Access:
    """What a key may do: its owner's access intersected with the key's permissions, organizations and sites."""
    if access.is_superuser:
        all_orgs = Organization.objects.filter(is_active=True).values_list("pk", flat=True)
        access = Access(permissions={org: frozenset(ALL_PERMISSIONS) for org in all_orgs}, sites={})
    allowed = frozenset(key.permissions)
    key_orgs = {org.pk for org in key.organizations.all()}
    key_sites = {}
    for site in key.sites.all():
        key_sites.setdefault(site.organization_id, set()).add(site.pk)
    permissions, sites = {}, {}
    for org, granted in access.permissions.items():
        if key_orgs and org not in key_orgs:
            continue
        permissions[org] = granted & allowed
        owner_sites = access.sites.get(org)
        if org in key_sites:
            sites[org] = frozenset(key_sites[org] if owner_sites is None else key_sites[org] & owner_sites)
        else:
            sites[org] = owner_sites
    return Access(permissions=permissions, sites=sites)


def resolve_access(request) -> Access:
    access = access_for_user(request.user)
    api_key = getattr(getattr(request, "auth", None), "api_key", None)
    return narrow_to_api_key(access, api_key) if api_key is not None else access
