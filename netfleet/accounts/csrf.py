"""Double-submit CSRF for cookie callers, and one credential per request."""

import hmac

from django.conf import settings

from netfleet.core.api.exceptions import json_error

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
GUARDED_PREFIXES = ("/api/", "/routers/", "/users/")


def csrf_exempt_path(path):
    return path in settings.NETFLEET_CSRF_EXEMPT_PATHS or path.startswith(settings.NETFLEET_CSRF_EXEMPT_PREFIXES)


class CredentialsMiddleware:
    """A mutating request that carries the access cookie must echo the `netfleet_csrf` cookie in X-CSRF-Token,
    whatever other credential it also carries; Bearer and X-API-Key together are refused."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if path.startswith(GUARDED_PREFIXES):
            has_bearer = request.META.get("HTTP_AUTHORIZATION", "").lower().startswith("bearer ")
            if has_bearer and "HTTP_X_API_KEY" in request.META:
                return json_error(request, 400, "Send either a Bearer token or an X-API-Key, not both")
            if (
                request.method in UNSAFE_METHODS
                and settings.NETFLEET_ACCESS_COOKIE in request.COOKIES
                and not csrf_exempt_path(path)
            ):
                expected = request.COOKIES.get(settings.NETFLEET_CSRF_COOKIE, "")
                supplied = request.META.get("HTTP_X_CSRF_TOKEN", "")
                if not expected or not hmac.compare_digest(expected, supplied):
                    return json_error(
                        request, 403, "CSRF check failed: send the netfleet_csrf cookie value in X-CSRF-Token"
                    )
        return self.get_response(request)
