"""What a caller may see and do, per organization and site.

`Access` is computed once per request by the resolver named in NETFLEET_ACCESS_RESOLVER (the accounts app,
which knows users, memberships, roles and API-key scopes); core only consumes it, so domain apps declare
scoping and never re-implement it.
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class Access:
    is_superuser: bool = False
    # organization id -> effective permission strings there
    permissions: dict = field(default_factory=dict)
    # organization id -> frozenset of site ids the caller is limited to, or None for every site
    sites: dict = field(default_factory=dict)

    def organization_ids(self, permission=None):
        return {org for org, perms in self.permissions.items() if permission is None or permission in perms}

    def has_permission(self, permission, organization_id=None, site_id=None):
        """True if allowed in that organization (and site); with no organization, allowed in any of them."""
        if self.is_superuser:
            return True
        if organization_id is None:
            return bool(self.organization_ids(permission))
        if permission not in self.permissions.get(organization_id, ()):
            return False
        allowed_sites = self.sites.get(organization_id)
        return allowed_sites is None or site_id is None or site_id in allowed_sites


ANONYMOUS = Access()


def get_access(request) -> Access:
    """The caller's Access, cached on the request."""
    cached = getattr(request, "_netfleet_access", None)
    if cached is None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            cached = ANONYMOUS
        else:
            cached = import_string(settings.NETFLEET_ACCESS_RESOLVER)(request)
        request._netfleet_access = cached
    return cached
