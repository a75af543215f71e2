"""HTTP conventions shared by every surface: request ids, optional trailing slashes, body limits, access log."""

import logging
import re
import time
import uuid

from django.conf import settings
from django.http import JsonResponse
from django.http.request import split_domain_port, validate_host
from django.urls import Resolver404, resolve

from netfleet.core.logging import current_request_id

logger = logging.getLogger("netfleet.request")

REQUEST_ID_HEADER = "X-Request-ID"
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def request_ids(supplied):
    """(id used in logs and error bodies, X-Request-ID value) for a request carrying `supplied` (or None)."""
    if supplied and _CLIENT_REQUEST_ID.match(supplied):
        return f"ext-{supplied}", supplied
    generated = uuid.uuid4().hex
    return generated, generated


def log_request(*, method, path, status, started, remote_addr):
    """The one access log line of a request (when INFO is on)."""
    if logger.isEnabledFor(logging.INFO):
        duration_ms = round((time.perf_counter() - started) * 1000, 2)
        extra = {"method": method, "path": path, "status": status, "duration_ms": duration_ms}
        logger.info("request", extra={**extra, "remote_addr": remote_addr})


class RequestIdMiddleware:
    """Gives every request an id (`request.request_id`), echoes it as X-Request-ID and logs the request once.

    A valid client-supplied id is echoed unchanged and used as `ext-<id>` in logs and error bodies so it can be
    told apart from a server-generated one; an invalid one is replaced.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # not request.headers: that parses every header
        request.request_id, header_value = request_ids(request.META.get("HTTP_X_REQUEST_ID"))
        token = current_request_id.set(request.request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = header_value
            log_request(
                method=request.method,
                path=request.path,
                status=response.status_code,
                started=started,
                remote_addr=request.META.get("REMOTE_ADDR"),
            )
            return response
        finally:
            current_request_id.reset(token)


class PathNormalizerMiddleware:
    """Makes the trailing slash optional on every route without a redirect: routes are declared with a slash
    and a request path without one is rewritten before URL resolution."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if not path.endswith("/") and not path.startswith("/" + settings.STATIC_URL.strip("/") + "/"):
            request.path_info = path + "/"
            request.path = request.path + "/"
        return self.get_response(request)


def body_too_large_detail(limit):
    # The one documented exception to the error envelope (platform-api.txt, 413).
    return {"detail": f"request body exceeds {limit}-byte limit"}


def invalid_content_length_detail():
    return {"detail": "invalid Content-Length"}


def body_too_large(limit):
    return JsonResponse(body_too_large_detail(limit), status=413)


def max_body_size_for(view_func):
    view_class = getattr(view_func, "cls", None) or getattr(view_func, "view_class", None)
    return getattr(view_class, "max_body_size", None) or getattr(view_func, "max_body_size", None)


class BodyLimitMiddleware:
    """Refuses a body over the limit from its Content-Length, before anything reads it.

    Views that accept uploads declare `max_body_size` (bytes) on their class; everything else gets
    NETFLEET_MAX_BODY_SIZE (read at call time).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse(invalid_content_length_detail(), status=400)
        if length > settings.NETFLEET_MAX_BODY_SIZE:
            limit = self._limit_for(request)
            if length > limit:
                return body_too_large(limit)
        return self.get_response(request)

    @staticmethod
    def _limit_for(request):
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return settings.NETFLEET_MAX_BODY_SIZE
        return max_body_size_for(match.func) or settings.NETFLEET_MAX_BODY_SIZE


class FastPathMiddleware:
    """Device-facing protocols (the agent's checksum polls, metric ingest) answer without the browser/API
    middleware they never use — sessions, CSRF, user auth, messages, static files. A view under
    NETFLEET_FAST_PATH_PREFIXES whose `fast_path(request)` accepts the request (it authenticates by device key
    itself) is called straight after the request id, the path normaliser, the rate limiter (which limits
    device-key ingest per device and leaves the agent's /controller/ paths alone), the body limit and the
    ALLOWED_HOSTS check."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(settings.NETFLEET_FAST_PATH_PREFIXES):
            return self.get_response(request)
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return self.get_response(request)  # the normal 404 handling
        accepts = getattr(match.func, "fast_path", None)
        if accepts is None or not accepts(request):
            return self.get_response(request)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.NETFLEET_MAX_BODY_SIZE:
            return body_too_large(settings.NETFLEET_MAX_BODY_SIZE)
        request.get_host()  # ALLOWED_HOSTS, as CommonMiddleware would check it (DisallowedHost: a 400)
        request.resolver_match = match
        return match.func(request, *match.args, **match.kwargs)


def host_allowed(environ):
    """Whether a WSGI request's Host is in ALLOWED_HOSTS, by the rule of Django's `HttpRequest.get_host()` (for
    answers given before Django builds a request)."""
    domain, _ = split_domain_port(environ.get("HTTP_HOST") or environ.get("SERVER_NAME", ""))
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)
