"""One exception handler for every API surface.

Under /api/ errors use the platform envelope {"error": {"code", "message", "request_id", "details"?}};
under /routers/ and /users/ the routers-api.txt shape {"error": "..."}.
"""

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from netfleet.core.exceptions import NetfleetError

logger = logging.getLogger("netfleet.errors")

ROUTERS_PREFIXES = ("/routers/", "/users/")
VALIDATION_MESSAGE = "Validation error"


class QueryValidationError(exceptions.ValidationError):
    """A bad query parameter (filter, page_size): reported with `query.` field paths."""

    location = "query"


def flatten_errors(detail, prefix):
    """Turn DRF's nested error detail into [{"field", "message", "type"}] with dotted/indexed field paths."""
    if isinstance(detail, dict):
        items = []
        for key, value in detail.items():
            if key in ("non_field_errors", "__all__"):
                path = prefix
            elif isinstance(key, int):  # DRF reports list items by index
                path = f"{prefix}[{key}]"
            else:
                path = f"{prefix}.{key}"
            items.extend(flatten_errors(value, path))
        return items
    if isinstance(detail, list):
        if all(isinstance(item, exceptions.ErrorDetail | str) for item in detail):
            return [flatten_errors(item, prefix)[0] for item in detail]
        items = []
        for index, value in enumerate(detail):
            if value:  # many=True lists carry {} for valid items
                items.extend(flatten_errors(value, f"{prefix}[{index}]"))
        return items
    return [{"field": prefix, "message": str(detail), "type": getattr(detail, "code", None) or "invalid"}]


def error_body(request_path, *, code, message, request_id, details=None):
    if request_path.startswith(ROUTERS_PREFIXES):
        return {"error": message}
    error = {"code": code, "message": message, "request_id": request_id}
    if details is not None:
        error["details"] = details
    return {"error": error}


def uses_api_errors(path):
    return path.startswith(("/api/", *ROUTERS_PREFIXES))


def _to_api_exception(exc):
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return exceptions.ValidationError(detail)
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    return exc


def exception_handler(exc, context):
    request = context.get("request")
    path = request.path if request is not None else "/api/"
    request_id = getattr(request, "request_id", None)
    exc = _to_api_exception(exc)
    headers = {}
    details = None

    if isinstance(exc, RequestDataTooBig):
        from netfleet.core.middleware import body_too_large

        return body_too_large(settings.NETFLEET_MAX_BODY_SIZE)
    if isinstance(exc, exceptions.ValidationError):
        details = flatten_errors(exc.detail, getattr(exc, "location", "body"))
        if details and all(item["type"] == "unique" for item in details):
            code, message = status.HTTP_409_CONFLICT, "Conflict: " + details[0]["message"]
        else:
            code, message = status.HTTP_422_UNPROCESSABLE_ENTITY, VALIDATION_MESSAGE
    elif isinstance(exc, IntegrityError):
        # a uniqueness race that validation could not see: the database settled it
        code, message = status.HTTP_409_CONFLICT, "Conflict with an existing object"
    elif isinstance(exc, exceptions.APIException):
        code = exc.status_code
        message = str(exc.detail) if not isinstance(exc.detail, dict | list) else exc.default_detail
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
    elif isinstance(exc, NetfleetError):
        code = exc.status_code
        message = exc.message
        details = exc.details
        headers.update(exc.headers)
    else:
        logger.exception("unhandled error", extra={"path": path})
        code = status.HTTP_500_INTERNAL_SERVER_ERROR
        message = "Internal server error"

    if code == 401 and "WWW-Authenticate" not in headers and not path.startswith(ROUTERS_PREFIXES):
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
    set_rollback()
    body = error_body(path, code=code, message=message, request_id=request_id, details=details)
    return Response(body, status=code, headers=headers)


def json_error(request, code, message):
    """A plain Django response in the API error shape (for handlers outside DRF)."""
    body = error_body(request.path, code=code, message=message, request_id=getattr(request, "request_id", None))
    return JsonResponse(body, status=code)
