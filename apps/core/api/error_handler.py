"""The API's exception handler: one error shape for every response, {"error": code, "detail": ...}.

Services raise the HTTP-free errors of apps.core.errors; this is the one place that maps them (and
DRF's and Django's own exceptions) to a status code.
"""

import logging

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from apps.core import errors
from apps.core.metrics import DEPENDENCY_ERRORS

logger = logging.getLogger(__name__)

DOMAIN_STATUS = {
    errors.NotFound: status.HTTP_404_NOT_FOUND,
    errors.Conflict: status.HTTP_409_CONFLICT,
    errors.Invalid: status.HTTP_400_BAD_REQUEST,
    errors.TooLarge: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    errors.Forbidden: status.HTTP_403_FORBIDDEN,
    errors.Unavailable: status.HTTP_503_SERVICE_UNAVAILABLE,
}

_CODES = {
    exceptions.ValidationError: "validation_error",
    exceptions.ParseError: "parse_error",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def domain_status(exc: errors.DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in DOMAIN_STATUS:
            return DOMAIN_STATUS[cls]
    return status.HTTP_400_BAD_REQUEST


def domain_error_response(exc: errors.DomainError) -> Response:
    return Response({"error": exc.code, "detail": exc.detail, **exc.extra}, status=domain_status(exc))


def _error_code(exc) -> str:
    for cls, code in _CODES.items():
        if isinstance(exc, cls):
            return code
    return getattr(exc, "default_code", "error")


def api_exception_handler(exc, context):
    # Imported here: rest_framework.views reads the parser settings, which import this module.
    from rest_framework.views import exception_handler

    from apps.core.middleware import is_connection_error

    if isinstance(exc, errors.DomainError):
        return domain_error_response(exc)
    if is_connection_error(exc):
        DEPENDENCY_ERRORS.labels("database").inc()
        logger.error("database unavailable: %s", exc)
        return domain_error_response(errors.Unavailable("The database is unavailable; retry later."))
    if isinstance(exc, RequestDataTooBig):
        return domain_error_response(errors.TooLarge("Request body exceeds the server's upload limit."))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    response = exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    if isinstance(detail, dict) and set(detail) == {"detail"}:
        detail = detail["detail"]
    response.data = {"error": _error_code(exc), "detail": detail}
    return response
