"""The credentials every API surface accepts: Bearer JWT, X-API-Key, the browser cookie and Django's admin
session. Each yields (user, Credential); access checks read the credential's API-key scope."""

import uuid
from dataclasses import dataclass

from django.conf import settings
from rest_framework import authentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from netfleet.core.sql import by_pk

from . import services
from .models import ApiKey, AuthSession
from .tokens import decode_access_token

API_KEY_HEADER = "HTTP_X_API_KEY"


@dataclass(frozen=True)
class Credential:
    session: AuthSession | None = None
    api_key: ApiKey | None = None


def _user_from_access_token(raw, request):
    try:
        token = decode_access_token(raw, request._request)
        session_id = uuid.UUID(str(token.get("sid")))
    except (TokenError, InvalidToken, ValueError):
        raise AuthenticationFailed("Invalid or expired token", code="token_not_valid") from None
    session = _session_with_user(session_id)
    if session is None or str(session.user_id) != str(token.get("sub")) or not services.session_is_usable(session):
        raise AuthenticationFailed("Token revoked or expired", code="token_not_valid")
    return session.user, Credential(session=session, api_key=session.api_key)


def _session_with_user(session_id):
    """The session, its user and API key (if any). Runs on every authenticated request: the session and its user
    in one written-out read, not an ORM query with joins (which cost several times as much)."""
    session = by_pk(AuthSession, session_id, joined="user")
    if session is None:  # no such session (a deleted user's sessions are deleted with it)
        return None
    if session.api_key_id is not None:
        session.api_key = ApiKey.objects.select_related("user").filter(pk=session.api_key_id).first()
    return session


class BearerAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <access JWT>`; the JWT's session must still be live (logout/reuse revoke it)."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != b"bearer":
            return None
        if len(header) != 2:
            raise AuthenticationFailed("Malformed Authorization header")
        return _user_from_access_token(header[1].decode("latin-1"), request)

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`X-API-Key: <prefix>.<secret>`."""

    def authenticate(self, request):
        raw = request.META.get(API_KEY_HEADER)
        if raw is None:
            return None
        prefix, _, secret = raw.strip().partition(".")
        key = services.verify_api_key(prefix=prefix, secret=secret)
        if key is None:
            raise AuthenticationFailed("Invalid, expired or revoked API key")
        services.touch_api_key(key, request)
        return key.user, Credential(api_key=key)

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class CookieAuthentication(authentication.BaseAuthentication):
    """The httpOnly access cookie set at login for browser clients (CSRF is enforced by CredentialsMiddleware)."""

    def authenticate(self, request):
        raw = request.COOKIES.get(settings.NETFLEET_ACCESS_COOKIE)
        if not raw:
            return None
        return _user_from_access_token(raw, request)

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class AdminSessionAuthentication(authentication.SessionAuthentication):
    """Django's admin login, so the browsable API works in a browser (with Django's own CSRF check)."""
