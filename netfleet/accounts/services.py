"""Authentication services: password login with lockout, MFA, token issue/rotation/revocation, API keys.

Tokens: the access token is a short-lived JWT carrying the session id (`sid`) and, for API-key logins, the key
id (`akid`). Refresh tokens are opaque random strings stored as SHA-256; each is single-use, and presenting a
used one revokes its whole session (theft detection).
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

import pyotp
from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from netfleet.core.exceptions import Conflict, Locked, NetfleetError

from . import audit
from .models import ApiKey, AuditAction, AuthSession, LoginLock, MfaChallenge, RecoveryCode, RefreshToken, User

API_KEY_PREFIX = "nfk_"
RECOVERY_CODE_COUNT = 10
_DUMMY_PASSWORD_HASH = None


class AuthenticationError(NetfleetError):
    status_code = 401
    default_message = "Invalid credentials"


class AccountLocked(Locked):
    default_message = "Account locked after repeated failed logins; try again later"


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session: AuthSession

    def as_response(self):
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
        }


# --- tokens -------------------------------------------------------------------------------------------------


def _access_token(session):
    token = AccessToken.for_user(session.user)
    token["sid"] = str(session.pk)
    if session.api_key_id:
        token["akid"] = str(session.api_key_id)
    return str(token)


def _new_refresh_token(session):
    raw = secrets.token_urlsafe(48)
    RefreshToken.objects.create(session=session, token_hash=sha256(raw))
    return raw


def start_session(*, user, request=None, api_key=None) -> TokenPair:
    """Open a session for an authenticated user and issue its first token pair."""
    session = AuthSession.objects.create(
        user=user,
        api_key=api_key,
        expires_at=timezone.now() + timedelta(seconds=settings.NETFLEET_REFRESH_TOKEN_SECONDS),
        source_ip=audit.client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "") if request is not None else "")[:255],
    )
    User.objects.filter(pk=user.pk).update(last_login=timezone.now())
    return _pair(session)


def _pair(session):
    lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]
    return TokenPair(
        access_token=_access_token(session),
        refresh_token=_new_refresh_token(session),
        expires_in=int(lifetime.total_seconds()),
        session=session,
    )


def refresh(*, refresh_token, request=None) -> TokenPair:
    """Rotate a refresh token. Reuse of a spent token revokes its session (every token of the family)."""
    now = timezone.now()
    with transaction.atomic():
        stored = (
            RefreshToken.objects.select_related("session", "session__user", "session__api_key")
            .filter(token_hash=sha256(refresh_token or ""))
            .first()
        )
        if stored is None:
            raise AuthenticationError("Invalid refresh token")
        session = stored.session
        spent = RefreshToken.objects.filter(pk=stored.pk, used_at__isnull=True).update(used_at=now) == 0
        if spent:
            if session.revoked_at is None:
                revoke_session(session, reason="refresh_token_reuse")
                audit.record(AuditAction.TOKEN_REUSE, request=request, actor=session.user, target=session)
        elif session_is_usable(session, now):
            pair = _pair(session)
            audit.record(AuditAction.TOKEN_REFRESH, request=request, actor=session.user, target=session)
            return pair
    raise AuthenticationError("Refresh token expired or revoked")


def session_is_usable(session, now=None):
    now = now or timezone.now()
    if session.revoked_at is not None or session.expires_at <= now or not session.user.is_active:
        return False
    return session.api_key_id is None or (session.api_key is not None and api_key_is_usable(session.api_key, now))


def revoke_session(session, *, reason):
    AuthSession.objects.filter(pk=session.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_reason=reason
    )


def logout(*, session_id, request=None):
    session = AuthSession.objects.filter(pk=session_id).select_related("user").first()
    if session is not None:
        revoke_session(session, reason="logout")
        audit.record(AuditAction.LOGOUT, request=request, actor=session.user, target=session)


# --- password login and lockout -----------------------------------------------------------------------------


def _lock_key(user, login):
    return f"user:{user.pk}" if user is not None else f"login:{login.strip().lower()[:280]}"


def find_user(login):
    login = (login or "").strip()
    if not login:
        return None
    return User.objects.filter(Q(username=login) | Q(email__iexact=login)).first()


def _check_not_locked(key, now):
    lock = LoginLock.objects.filter(key=key).first()
    if lock is not None and lock.locked_until is not None and lock.locked_until > now:
        raise AccountLocked()


def _record_failure(key, now, *, request, user, login):
    window = timedelta(seconds=settings.NETFLEET_LOGIN_LOCKOUT_SECONDS)
    with transaction.atomic():
        lock, _ = LoginLock.objects.select_for_update().get_or_create(key=key)
        if lock.first_failure_at is None or now - lock.first_failure_at > window or lock.locked_until:
            lock.failures, lock.first_failure_at, lock.locked_until = 0, now, None
        lock.failures += 1
        locked = lock.failures >= settings.NETFLEET_LOGIN_MAX_FAILURES
        if locked:
            lock.locked_until = now + window
        lock.save()
    audit.record(AuditAction.LOGIN_FAILED, request=request, actor=user, actor_label=login[:300])
    if locked:
        audit.record(AuditAction.LOCKOUT, request=request, actor=user, actor_label=login[:300])


def _password_matches(user, password):
    global _DUMMY_PASSWORD_HASH
    if user is None:
        # hash anyway, so an unknown login costs the same time as a wrong password
        if _DUMMY_PASSWORD_HASH is None:
            _DUMMY_PASSWORD_HASH = make_password(secrets.token_urlsafe(16))
        check_password(password, _DUMMY_PASSWORD_HASH)
        return False
    return user.check_password(password) and user.is_active


def authenticate_password(*, login, password, request=None):
    """Check a login (username or email) and password. Raises AccountLocked (423) or AuthenticationError (401),
    with the same message for an unknown login as for a wrong password."""
    now = timezone.now()
    user = find_user(login)
    key = _lock_key(user, login or "")
    _check_not_locked(key, now)
    if not _password_matches(user, password or ""):
        _record_failure(key, now, request=request, user=user, login=login or "")
        raise AuthenticationError("Invalid credentials")
    LoginLock.objects.filter(key=key).delete()
    return user


def login(*, login, password, request=None):
    """Password login. Returns a TokenPair, or an MFA challenge token (str) when the user has MFA on."""
    user = authenticate_password(login=login, password=password, request=request)
    if user.mfa_enabled:
        raw = secrets.token_urlsafe(32)
        MfaChallenge.objects.create(
            user=user,
            token_hash=sha256(raw),
            expires_at=timezone.now() + timedelta(seconds=settings.NETFLEET_MFA_CHALLENGE_SECONDS),
        )
        audit.record(AuditAction.MFA_CHALLENGE, request=request, actor=user)
        return raw
    pair = start_session(user=user, request=request)
    audit.record(AuditAction.LOGIN, request=request, actor=user, target=pair.session)
    return pair


# --- MFA ----------------------------------------------------------------------------------------------------


def _totp(user):
    return pyotp.TOTP(user.mfa_secret)


def verify_totp(user, code):
    """Accept a current code once: the accepted time step is remembered so the same code can't be replayed."""
    if not user.mfa_secret or not code:
        return False
    totp = _totp(user)
    now = timezone.now()
    current_step = totp.timecode(now)
    for offset in (0, -1, 1):  # one step of clock drift either way
        step = current_step + offset
        if step > user.mfa_last_step and hmac.compare_digest(totp.generate_otp(step), str(code).strip()):
            updated = User.objects.filter(pk=user.pk, mfa_last_step__lt=step).update(mfa_last_step=step)
            if updated:
                user.mfa_last_step = step
                return True
            return False
    return False


def _use_recovery_code(user, code):
    normalized = str(code or "").strip().replace("-", "").lower()
    if not normalized:
        return False
    now = timezone.now()
    return (
        RecoveryCode.objects.filter(user=user, code_hash=sha256(normalized), used_at__isnull=True).update(used_at=now)
        == 1
    )


def complete_mfa_login(*, mfa_token, code, request=None):
    now = timezone.now()
    challenge = MfaChallenge.objects.select_related("user").filter(token_hash=sha256(mfa_token or "")).first()
    if challenge is None or challenge.used_at is not None or challenge.expires_at <= now:
        raise AuthenticationError("Invalid or expired MFA token")
    user = challenge.user
    key = _lock_key(user, "")
    _check_not_locked(key, now)
    if not (verify_totp(user, code) or _use_recovery_code(user, code)):
        _record_failure(key, now, request=request, user=user, login=user.get_username())
        raise AuthenticationError("Invalid MFA code")
    if MfaChallenge.objects.filter(pk=challenge.pk, used_at__isnull=True).update(used_at=now) != 1:
        raise AuthenticationError("Invalid or expired MFA token")
    pair = start_session(user=user, request=request)
    audit.record(AuditAction.LOGIN, request=request, actor=user, target=pair.session, details={"mfa": True})
    return pair


def setup_mfa(*, user):
    """Generate a new (not yet enabled) TOTP secret. Returns (secret, otpauth URI)."""
    if user.mfa_enabled:
        raise Conflict("MFA is already enabled; disable it first")
    secret = pyotp.random_base32()
    user.mfa_secret = secret
    user.mfa_last_step = 0
    user.save(update_fields=["mfa_secret", "mfa_last_step"])
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email or user.username, issuer_name="netfleet")
    return secret, uri


def enable_mfa(*, user, code, request=None):
    """Confirm the pending secret with a code; returns the one-time recovery codes (shown once)."""
    if user.mfa_enabled:
        raise Conflict("MFA is already enabled")
    if not user.mfa_secret:
        raise NetfleetError("Call /auth/mfa/setup first")
    if not verify_totp(user, code):
        raise NetfleetError(
            "Invalid MFA code", details=[{"field": "body.code", "message": "invalid code", "type": "invalid"}]
        )
    codes = [secrets.token_hex(5) for _ in range(RECOVERY_CODE_COUNT)]
    with transaction.atomic():
        RecoveryCode.objects.filter(user=user).delete()
        RecoveryCode.objects.bulk_create([RecoveryCode(user=user, code_hash=sha256(code)) for code in codes])
        user.mfa_enabled = True
        user.save(update_fields=["mfa_enabled"])
    audit.record(AuditAction.MFA_ENABLED, request=request, actor=user, target=user)
    return codes


def disable_mfa(*, user, code, request=None):
    if not user.mfa_enabled:
        raise Conflict("MFA is not enabled")
    if not (verify_totp(user, code) or _use_recovery_code(user, code)):
        raise NetfleetError("Invalid MFA code")
    with transaction.atomic():
        RecoveryCode.objects.filter(user=user).delete()
        user.mfa_enabled, user.mfa_secret = False, ""
        user.save(update_fields=["mfa_enabled", "mfa_secret"])
    audit.record(AuditAction.MFA_DISABLED, request=request, actor=user, target=user)


# --- API keys -----------------------------------------------------------------------------------------------


def api_key_is_usable(key, now=None):
    now = now or timezone.now()
    return key.revoked_at is None and (key.expires_at is None or key.expires_at > now) and key.user.is_active


def create_api_key(*, user, name, permissions, organizations=(), sites=(), expires_at=None, request=None):
    """Create a key; returns (ApiKey, full secret). The secret is shown once and only its hash is kept."""
    with transaction.atomic():
        # lock the owner's row so two concurrent creations can't both pass the cap
        User.objects.select_for_update().filter(pk=user.pk).first()
        active = ApiKey.objects.filter(user=user, revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
        )
        if active.count() >= settings.NETFLEET_API_KEYS_PER_USER:
            raise Conflict(f"API key limit reached ({settings.NETFLEET_API_KEYS_PER_USER} per user)")
        prefix = API_KEY_PREFIX + secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        key = ApiKey.objects.create(
            user=user,
            name=name,
            prefix=prefix,
            secret_hash=sha256(secret),
            permissions=sorted(set(permissions)),
            expires_at=expires_at,
        )
        key.organizations.set(organizations)
        key.sites.set(sites)
    audit.record(AuditAction.API_KEY_CREATED, request=request, actor=user, target=key, details={"name": name})
    return key, f"{prefix}.{secret}"


def revoke_api_key(*, key, request=None):
    if ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()):
        audit.record(AuditAction.API_KEY_REVOKED, request=request, target=key, details={"name": key.name})


def verify_api_key(*, prefix, secret):
    """The usable key matching prefix and secret, or None. Constant-time comparison of the hashes."""
    key = ApiKey.objects.select_related("user").filter(prefix=prefix or "").first()
    if key is None or not hmac.compare_digest(key.secret_hash, sha256(secret or "")):
        return None
    return key if api_key_is_usable(key) else None


def touch_api_key(key, request=None):
    """Record last use, at most once a minute per key (keeps the hot path free of writes)."""
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > timedelta(seconds=60):
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now, last_used_ip=audit.client_ip(request))


def api_key_login(*, public_key, private_key, request=None):
    key = verify_api_key(prefix=public_key, secret=private_key)
    if key is None:
        raise AuthenticationError("Invalid API key")
    touch_api_key(key, request)
    pair = start_session(user=key.user, request=request, api_key=key)
    audit.record(
        AuditAction.LOGIN, request=request, actor=key.user, target=pair.session, details={"api_key": key.prefix}
    )
    return pair
