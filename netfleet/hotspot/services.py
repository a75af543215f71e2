"""Hotspot packages on routers: profile sync, vouchers (hotspot users) and active sessions."""

import logging
import re
import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from netfleet.core.exceptions import Conflict, NetfleetError
from netfleet.gateways import services as gateway_services
from netfleet.gateways.routeros import RouterOSError

from .choices import PackageSyncState
from .models import Package, Voucher

logger = logging.getLogger("netfleet.hotspot")

PROFILES = "ip/hotspot/user/profile"
USERS = "ip/hotspot/user"
ACTIVE = "ip/hotspot/active"
VOUCHER_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud and typed on phones
SESSION_ID_RE = re.compile(r"^\*[0-9A-Fa-f]{1,16}$")


class NotFoundOnRouter(NetfleetError):
    status_code = 404
    default_message = "Not found"


def routeros_duration(seconds):
    """Seconds -> RouterOS time ("1h", "1d", "4w2d")."""
    parts = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts) or "0s"


def profile_properties(package):
    comment = f"netfleet package {package.pk}" + ("" if package.is_active else " (inactive)")
    return {
        "name": package.profile_name,
        "rate-limit": f"{package.upload_speed_mbps}M/{package.download_speed_mbps}M",
        "session-timeout": routeros_duration(package.duration_hours * 3600),
        "shared-users": str(package.shared_users),
        "comment": comment,
    }


# --- packages ----------------------------------------------------------------------------------------------------


def create_package(**fields):
    """Save a package, then push it to its router as a hotspot user profile (the outcome is kept on the package)."""
    package = Package(**fields)
    with transaction.atomic():
        _validated_save(package)
    return sync_package(package=package)


def update_package(*, package, **fields):
    for name, value in fields.items():
        setattr(package, name, value)
    with transaction.atomic():
        _validated_save(package)
    return sync_package(package=package)


def _validated_save(package):
    package.full_clean(validate_unique=False, validate_constraints=False)
    package.sync_state = PackageSyncState.PENDING
    package.save()


def sync_package(*, package):
    """Create or update the router's hotspot user profile of the package (found by its stored id, else by name).
    A router error or an unreachable router leaves `sync_state=error` with the message; it does not raise."""
    client = gateway_services.client_for(package.router)
    properties = profile_properties(package)
    try:
        profile = None
        if package.profile_id:
            try:
                profile = client.update(PROFILES, package.profile_id, properties)
            except RouterOSError as exc:
                if exc.router_status != 404:
                    raise
        if profile is None:
            existing = client.get(PROFILES, name=properties["name"])
            if existing:
                profile = client.update(PROFILES, existing[0][".id"], properties)
            else:
                profile = client.create(PROFILES, properties)
    except NetfleetError as exc:
        logger.warning("package sync failed", extra={"package": package.pk, "router": package.router_id})
        package.sync_state, package.sync_error = PackageSyncState.ERROR, exc.message[:1024]
    else:
        package.profile_id = profile.get(".id", "")
        package.sync_state, package.sync_error, package.synced_at = PackageSyncState.SYNCED, "", timezone.now()
    Package.objects.filter(pk=package.pk).update(
        profile_id=package.profile_id,
        sync_state=package.sync_state,
        sync_error=package.sync_error,
        synced_at=package.synced_at,
    )
    return package


def delete_package(*, package):
    """Delete the package and, best effort, its profile on the router (an unreachable router does not block)."""
    if package.profile_id:
        try:
            gateway_services.client_for(package.router).remove(PROFILES, package.profile_id)
        except NetfleetError as exc:
            logger.warning("profile removal failed", extra={"package": package.pk, "reason": exc.message})
    package.delete()


# --- vouchers ----------------------------------------------------------------------------------------------------


def _new_codes(router, count, prefix, length):
    taken = set(Voucher.objects.filter(router=router).values_list("code", flat=True))
    codes = []
    while len(codes) < count:
        code = prefix + "".join(secrets.choice(VOUCHER_ALPHABET) for _ in range(length))
        if code not in taken:
            taken.add(code)
            codes.append(code)
    return codes


def create_vouchers(*, router, package, count, prefix="", length=8, limit_bytes_total=None):
    """Create `count` hotspot users on the router for an active package: unique codes (login = password),
    `limit-uptime` from the package's duration, optional `limit-bytes-total`. Each voucher is recorded as soon as
    the router has it, so a failure part-way keeps the ones made (and the error is raised)."""
    if package.router_id != router.pk:
        raise NetfleetError("This package belongs to another router.")
    if not package.is_active:
        raise Conflict("This package is inactive; activate it to sell vouchers.")
    if package.sync_state != PackageSyncState.SYNCED or not package.profile_id:
        sync_package(package=package)
        if package.sync_state != PackageSyncState.SYNCED:
            raise Conflict(f"The package's profile could not be synced to the router: {package.sync_error}")
    client = gateway_services.client_for(router)
    limit_uptime = routeros_duration(package.duration_hours * 3600)
    vouchers = []
    for code in _new_codes(router, count, prefix, length):
        properties = {
            "name": code, "password": code, "profile": package.profile_name, "limit-uptime": limit_uptime,
            "comment": f"netfleet voucher package {package.pk}",
        }  # fmt: skip
        if limit_bytes_total:
            properties["limit-bytes-total"] = str(limit_bytes_total)
        user = client.create(USERS, properties)
        vouchers.append(
            Voucher.objects.create(
                router=router,
                package=package,
                code=code,
                user_id=(user or {}).get(".id", ""),
                limit_uptime=limit_uptime,
                limit_bytes_total=limit_bytes_total,
            )  # fmt: skip
        )
    return vouchers


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def list_vouchers(*, router):
    """The router's vouchers with their use as the router reports it (uptime, bytes)."""
    users = gateway_services.client_for(router).get(
        USERS, proplist=(".id", "name", "uptime", "bytes-in", "bytes-out", "disabled")
    )
    by_name = {user.get("name"): user for user in users or []}
    rows = []
    for voucher in Voucher.objects.filter(router=router).select_related("package"):
        user = by_name.get(voucher.code)
        uptime = (user or {}).get("uptime", "0s")
        rows.append(
            {
                "code": voucher.code,
                "package_id": voucher.package_id,
                "package_name": voucher.package.name if voucher.package else None,
                "limit_uptime": voucher.limit_uptime,
                "limit_bytes_total": voucher.limit_bytes_total,
                "created_at": voucher.created,
                "on_router": user is not None,
                "used": user is not None and (uptime not in ("0s", "") or _int(user.get("bytes-out")) > 0),
                "uptime": uptime,
                "bytes_in": _int((user or {}).get("bytes-in")),
                "bytes_out": _int((user or {}).get("bytes-out")),
            }
        )
    return rows


def revoke_voucher(*, router, code):
    """Kick the voucher's sessions, remove its hotspot user and forget it."""
    voucher = Voucher.objects.filter(router=router, code=code).first()
    if voucher is None:
        raise NotFoundOnRouter(f'No voucher "{code}" on this router')
    client = gateway_services.client_for(router)
    for session in client.get(ACTIVE, user=code) or []:
        client.remove(ACTIVE, session[".id"])
    for user in client.get(USERS, name=code) or []:
        client.remove(USERS, user[".id"])
    voucher.delete()
    return voucher


# --- sessions ----------------------------------------------------------------------------------------------------


def list_sessions(*, router):
    sessions = gateway_services.client_for(router).get(ACTIVE) or []
    return [
        {
            "id": item.get(".id"),
            "user": item.get("user", ""),
            "address": item.get("address", ""),
            "mac_address": item.get("mac-address", ""),
            "server": item.get("server", ""),
            "login_by": item.get("login-by", ""),
            "uptime": item.get("uptime", ""),
            "session_time_left": item.get("session-time-left", ""),
            "bytes_in": _int(item.get("bytes-in")),
            "bytes_out": _int(item.get("bytes-out")),
        }
        for item in sessions
    ]


def kick_session(*, router, session_id):
    """Disconnect one active hotspot session (RouterOS id `*N`)."""
    if not SESSION_ID_RE.match(session_id or ""):
        raise NotFoundOnRouter("No such session (ids look like *1A)")
    try:
        gateway_services.client_for(router).remove(ACTIVE, session_id)
    except RouterOSError as exc:
        if exc.router_status == 404 or "no such item" in exc.message:
            raise NotFoundOnRouter(f"No active session {session_id} on this router") from None
        raise


def max_vouchers():
    return settings.NETFLEET_HOTSPOT_MAX_VOUCHERS
