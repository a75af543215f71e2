"""The permission check every tenant-scoped view uses.

A view declares `permission_read` and `permission_write` (permission strings such as "device:read"), and may
map extra actions in `action_permissions`. The caller's role in the object's organization (and site grant)
decides; objects the caller cannot see were already filtered out of the queryset, so they answer 404.
"""

from rest_framework import permissions

from netfleet.core.tenancy import get_access


def required_permission(view, request):
    action = getattr(view, "action", None)
    mapped = getattr(view, "action_permissions", {}).get(action)
    if mapped:
        return mapped
    if request.method in permissions.SAFE_METHODS:
        return getattr(view, "permission_read", None)
    return getattr(view, "permission_write", None)


class TenantPermission(permissions.BasePermission):
    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        needed = required_permission(view, request)
        if needed is None:
            return True
        if get_access(request).has_permission(needed):
            return True
        self.message = f"Permission denied: requires '{needed}'"
        return False

    def has_object_permission(self, request, view, obj):
        needed = required_permission(view, request)
        access = get_access(request)
        if needed is None or access.is_superuser:
            return True
        organization_id = getattr(obj, "tenancy_organization_id", None)
        if organization_id is None:
            # a shared object: readable by everyone who may read, writable by superusers only
            allowed = request.method in permissions.SAFE_METHODS and access.has_permission(needed)
        else:
            allowed = access.has_permission(needed, organization_id, getattr(obj, "tenancy_site_id", None))
        if not allowed:
            self.message = f"Permission denied: requires '{needed}'"
        return allowed
