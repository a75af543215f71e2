"""Access JWTs decoded once per request: the rate limiter (who is calling) and authentication (is the session
live) both read the token, and checking its signature is the costly part."""

from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken


def decode_access_token(raw, request=None):
    """`AccessToken(raw)` (raises TokenError), remembered on the Django request for the rest of its handling."""
    memo = getattr(request, "_netfleet_access_token", None)
    if memo is None or memo[0] != raw:
        try:
            memo = (raw, AccessToken(raw))
        except TokenError as exc:
            memo = (raw, exc)
        if request is not None:
            request._netfleet_access_token = memo
    if isinstance(memo[1], TokenError):
        raise memo[1]
    return memo[1]
