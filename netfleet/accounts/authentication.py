"""Bearer JWT authentication for every API surface."""

from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken


class BearerAuthentication(JWTAuthentication):
    """`Authorization: Bearer <access JWT>`; bad, expired or revoked tokens are a plain 401."""

    www_authenticate_realm = "api"

    def authenticate(self, request):
        try:
            return super().authenticate(request)
        except InvalidToken:
            raise AuthenticationFailed("Invalid or expired token", code="token_not_valid") from None
