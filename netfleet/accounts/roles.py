"""Roles and the permissions they grant: the one declarative table."""

from django.db import models


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    NETWORK_ADMIN = "network_admin", "Network admin"
    SITE_ADMIN = "site_admin", "Site admin"
    ORG_ADMIN = "org_admin", "Organization admin"


ROLE_ORDER = [Role.VIEWER, Role.OPERATOR, Role.NETWORK_ADMIN, Role.SITE_ADMIN, Role.ORG_ADMIN]

ALL_PERMISSIONS = (
    "device:read",
    "monitoring:read",
    "device:write",
    "monitoring:write",
    "discovery:run",
    "network:write",
    "firewall:write",
    "vpn:write",
    "firmware:write",
    "pki:write",
    "hypervisor:write",
    "controller:write",
    "user:admin",
)

# Each role holds its own grants plus everything below it.
_GRANTS = {
    Role.VIEWER: {"device:read", "monitoring:read"},
    Role.OPERATOR: {"device:write", "monitoring:write", "discovery:run"},
    Role.NETWORK_ADMIN: {"network:write", "firewall:write", "vpn:write", "firmware:write", "pki:write"},
    Role.SITE_ADMIN: {"hypervisor:write", "controller:write"},
    Role.ORG_ADMIN: {"user:admin"},
}


def _cumulative():
    table, granted = {}, set()
    for role in ROLE_ORDER:
        granted |= _GRANTS[role]
        table[role] = frozenset(granted)
    return table


ROLE_PERMISSIONS = _cumulative()


def role_rank(role):
    return ROLE_ORDER.index(Role(role))


def permissions_for(role):
    return ROLE_PERMISSIONS[Role(role)]
