"""Directory changes: users and organization memberships.

The escalation rules live here, next to the audit trail they feed: a caller grants, changes or removes only what
sits strictly below its own role (and inside its own site grant) in that organization; superusers are unlimited.
Every function takes the `request` so the audit event carries its actor, request id and source address.
"""

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from netfleet.core.exceptions import Conflict, NetfleetError
from netfleet.core.tenancy import get_access

from .audit import record
from .models import AuditAction, AuthSession, Membership, Organization, User
from .roles import ROLE_ORDER, Role, role_rank

USER_ADMIN = "user:admin"
UNLIMITED_RANK = len(ROLE_ORDER)  # a superuser outranks every role
NO_RANK = -1


class Forbidden(NetfleetError):
    status_code = 403
    default_message = "Permission denied"


class RuleViolation(NetfleetError):
    status_code = 400
    default_message = "This change is not allowed"


# -- who may see what ---------------------------------------------------------------------------------------------


def visible_organizations(request):
    """Organizations the caller is a member of (superusers: all)."""
    return Organization.objects.visible_to(get_access(request))


def visible_users(request):
    """The caller, plus users sharing an organization where the caller holds user:admin (superusers: all)."""
    access = get_access(request)
    if access.is_superuser:
        return User.objects.all()
    administered = Membership.objects.filter(organization_id__in=access.organization_ids(USER_ADMIN))
    return User.objects.filter(Q(pk=request.user.pk) | Q(pk__in=administered.values("user_id")))


# -- the escalation rules -----------------------------------------------------------------------------------------


def caller_rank(request, organization):
    """The caller's role rank in `organization` for user administration: NO_RANK without user:admin there."""
    access = get_access(request)
    if access.is_superuser:
        return UNLIMITED_RANK
    if not access.has_permission(USER_ADMIN, organization.pk):
        return NO_RANK
    role = (
        Membership.objects.filter(user=request.user, organization=organization).values_list("role", flat=True).first()
    )
    return role_rank(role) if role else NO_RANK


def _require_admin(request, organization):
    rank = caller_rank(request, organization)
    if rank == NO_RANK:
        raise Forbidden(f"Permission denied: requires '{USER_ADMIN}' in organization '{organization.slug}'")
    return rank


def _check_site_scope(request, organization, site_ids):
    """A site-limited administrator acts only on grants inside its own sites (an organization-wide grant is not)."""
    limited_to = get_access(request).sites.get(organization.pk)
    if limited_to is None or get_access(request).is_superuser:
        return
    if not site_ids or not set(site_ids) <= set(limited_to):
        raise Forbidden("Permission denied: you may only grant or manage access to sites within your own grant")


def check_may_grant(request, *, organization, role, sites=()):
    """Refuses (403) a grant of `role` (limited to `sites`) that is not strictly below the caller's own."""
    rank = _require_admin(request, organization)
    if role_rank(role) >= rank:
        raise Forbidden(
            f"Permission denied: you may only grant roles below your own ({ROLE_ORDER[rank].value}) "
            f"in organization '{organization.slug}'"
        )
    _check_site_scope(request, organization, [site.pk for site in sites])


def check_may_manage_member(request, membership):
    """Refuses (403) changing or removing a member whose current role is not strictly below the caller's."""
    organization = membership.organization
    rank = _require_admin(request, organization)
    if role_rank(membership.role) >= rank:
        raise Forbidden(
            f"Permission denied: the member's role ({membership.role}) is not below your own "
            f"({ROLE_ORDER[rank].value}) in organization '{organization.slug}'"
        )
    _check_site_scope(request, organization, [site.pk for site in membership.sites.all()])


def check_may_create_user(request, *, organization=None, role=None, sites=()):
    access = get_access(request)
    if access.is_superuser:
        return
    if not access.has_permission(USER_ADMIN):
        raise Forbidden(f"Permission denied: requires '{USER_ADMIN}'")
    check_may_grant(request, organization=organization, role=role, sites=sites)


def check_may_change_user(request, user):
    """Superusers change anyone; a user:admin holder changes a user only where every membership of that user is in
    an organization it administers, with a role strictly below its own. Superuser accounts: superusers only."""
    if get_access(request).is_superuser:
        return
    if user.is_superuser:
        raise Forbidden("Permission denied: only superusers may change a superuser")
    memberships = list(user.memberships.select_related("organization").prefetch_related("sites"))
    if not memberships:
        raise Forbidden(f"Permission denied: requires '{USER_ADMIN}' in every organization of this user")
    for membership in memberships:
        check_may_manage_member(request, membership)


def check_may_delete_user(request, user):
    if user.pk == request.user.pk:
        raise RuleViolation("You cannot delete your own account")
    check_may_change_user(request, user)


# -- memberships --------------------------------------------------------------------------------------------------


def _site_ids(sites):
    return sorted(str(site.pk) for site in sites)


def _audit_membership(request, membership, change, **details):
    record(
        AuditAction.PERMISSION_CHANGED,
        request=request,
        organization=membership.organization,
        target=membership.user,
        details={"change": change, "user_id": str(membership.user_id), "username": membership.user.username, **details},
    )


def _create_membership(request, *, organization, user, role, sites):
    if Membership.objects.filter(organization=organization, user=user).exists():
        raise Conflict(f"Conflict: {user.username} is already a member of this organization")
    membership = Membership(organization=organization, user=user, role=role)
    membership.validated_save()
    membership.sites.set(sites)
    _audit_membership(request, membership, "membership_created", role=role, sites=_site_ids(sites))
    return membership


def add_member(*, request, organization, user, role=Role.VIEWER, sites=()):
    """Give `user` a role in `organization` (optionally limited to `sites`). 409 if already a member."""
    check_may_grant(request, organization=organization, role=role, sites=sites)
    with transaction.atomic():
        return _create_membership(request, organization=organization, user=user, role=role, sites=sites)


def change_member(*, request, membership, role=None, sites=None):
    """Change a member's role and/or sites; both the current and the new grant must be below the caller's."""
    # judge the stored row: a serializer may already have set the new values on the instance it was given
    membership = Membership.objects.select_related("organization", "user").get(pk=membership.pk)
    check_may_manage_member(request, membership)
    new_role = role if role is not None else membership.role
    old_sites = list(membership.sites.all())
    new_sites = list(sites) if sites is not None else old_sites
    check_may_grant(request, organization=membership.organization, role=new_role, sites=new_sites)
    changes = {}
    if new_role != membership.role:
        changes["role"] = {"from": membership.role, "to": new_role}
    if _site_ids(new_sites) != _site_ids(old_sites):
        changes["sites"] = {"from": _site_ids(old_sites), "to": _site_ids(new_sites)}
    if not changes:
        return membership
    with transaction.atomic():
        membership.role = new_role
        membership.validated_save()
        membership.sites.set(new_sites)
        _audit_membership(request, membership, "membership_updated", **changes)
    return membership


def remove_member(*, request, membership):
    """Remove a user from an organization (the user account stays)."""
    membership = Membership.objects.select_related("organization", "user").get(pk=membership.pk)
    check_may_manage_member(request, membership)
    with transaction.atomic():
        sites = _site_ids(membership.sites.all())
        _audit_membership(request, membership, "membership_deleted", role=membership.role, sites=sites)
        membership.delete()


# -- users --------------------------------------------------------------------------------------------------------


def _audit_user(request, user, organizations, details):
    # one event per organization of the user, so each organization's administrators see it in their trail
    for organization in organizations or [None]:
        record(AuditAction.USER_CHANGED, request=request, organization=organization, target=user, details=details)


def _organizations_of(user):
    return list(Organization.objects.filter(memberships__user=user).order_by("slug"))


def create_user(*, request, fields, password=None, organization=None, role=None, sites=()):
    """Create a user (password hashed; none given = unusable) and, with `organization`, its first membership."""
    check_may_create_user(request, organization=organization, role=role, sites=sites)
    with transaction.atomic():
        user = User(**fields)
        user.is_staff = user.is_superuser  # superusers may use the admin site
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.full_clean()
        user.save()
        details = {
            "change": "user_created",
            "username": user.username,
            "is_superuser": user.is_superuser,
            "is_active": user.is_active,
            "password_set": bool(password),
        }
        _audit_user(request, user, [organization] if organization else [], details)
        if organization is not None:
            _create_membership(request, organization=organization, user=user, role=role or Role.VIEWER, sites=sites)
    return user


AUDITED_USER_FIELDS = ("is_superuser", "is_active")


def update_user(*, request, user, fields, password=None):
    """Change a user's profile fields and/or password; changes of is_superuser, is_active and password are audited."""
    user = User.objects.get(pk=user.pk)  # the stored row, not an instance a serializer already changed
    check_may_change_user(request, user)
    if user.pk == request.user.pk and (fields.get("is_superuser") is False or fields.get("is_active") is False):
        raise RuleViolation("You cannot remove your own superuser status or deactivate your own account")
    changes = {
        name: {"from": getattr(user, name), "to": fields[name]}
        for name in AUDITED_USER_FIELDS
        if name in fields and fields[name] != getattr(user, name)
    }
    with transaction.atomic():
        for name, value in fields.items():
            setattr(user, name, value)
        if "is_superuser" in changes:
            user.is_staff = user.is_superuser
        if password:
            user.set_password(password)
            changes["password_changed"] = True
        user.full_clean()
        user.save()
        if password:
            # whoever knew the old password may hold tokens: end every other session of the account
            current = getattr(getattr(request, "auth", None), "session", None)
            AuthSession.objects.filter(user=user, revoked_at__isnull=True).exclude(
                pk=getattr(current, "pk", None)
            ).update(revoked_at=timezone.now(), revoked_reason="password_changed")
        if changes:
            _audit_user(request, user, _organizations_of(user), {"change": "user_updated", **changes})
    return user


def delete_user(*, request, user):
    """Delete a user account and its memberships. Nobody deletes their own account."""
    check_may_delete_user(request, user)
    with transaction.atomic():
        for membership in user.memberships.select_related("organization"):
            _audit_user(
                request,
                user,
                [membership.organization],
                {"change": "user_deleted", "username": user.username, "role": membership.role},
            )
        if not user.memberships.exists():
            _audit_user(request, user, [], {"change": "user_deleted", "username": user.username})
        user.delete()
