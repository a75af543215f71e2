"""Access JWTs decoded once per request: the rate limiter (who is calling) and authentication (is the session
live) both read the token, and checking its signature is the costly part.

A process also remembers the last few thousand tokens it verified: everything `AccessToken` checks is fixed by the
token's text (signature, type, claims) except its expiry, which is checked again on every use. Whether its session
is still live is not a property of the token: authentication reads the session on every request."""

import functools

from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken
from rest_framework_simplejwt.utils import aware_utcnow

VERIFIED_TOKENS = 4096  # per process; a token is ~1 KB


@functools.lru_cache(maxsize=VERIFIED_TOKENS)
def _verified(raw):
    return AccessToken(raw)  # an invalid token raises, and is not remembered


def decode_access_token(raw, request=None):
    """`AccessToken(raw)` (raises TokenError), remembered on the Django request for the rest of its handling."""
    memo = getattr(request, "_netfleet_access_token", None)
    if memo is None or memo[0] != raw:
        try:
            token = _verified(raw)
            token.check_exp(current_time=aware_utcnow())
            memo = (raw, token)
        except TokenError as exc:
            memo = (raw, exc)
        if request is not None:
            request._netfleet_access_token = memo
    if isinstance(memo[1], TokenError):
        raise memo[1]
    return memo[1]
