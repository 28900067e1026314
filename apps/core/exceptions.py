"""One error shape for every API response: {"error": code, "detail": ...}."""

import logging

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "Request body is too large."


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The request conflicts with the current state."

    def __init__(self, detail=None, code=None, extra=None):
        super().__init__(detail, code)
        self.extra = extra or {}


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "service_unavailable"


class FieldValidationError(exceptions.APIException):
    """A 400 whose detail is already a {field_path: [messages]} map (e.g. from training.trace_schema)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "validation_error"

    def __init__(self, errors: dict):
        super().__init__()
        self.detail = errors


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


def _error_code(exc) -> str:
    for cls, code in _CODES.items():
        if isinstance(exc, cls):
            return code
    # Our own exceptions may carry a specific code (e.g. Conflict(..., code="duplicate")).
    specific = getattr(getattr(exc, "detail", None), "code", None)
    return specific or getattr(exc, "default_code", "error")


def api_exception_handler(exc, context):
    # Imported here: rest_framework.views reads the parser settings, which import this module.
    from rest_framework.views import exception_handler

    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge("Request body exceeds the server's upload limit.")
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    response = exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    if isinstance(detail, dict) and set(detail) == {"detail"}:
        detail = detail["detail"]
    body = {"error": _error_code(exc), "detail": detail}
    body.update(getattr(exc, "extra", {}))
    response.data = body
    return response


def error_response(code: str, detail, http_status: int) -> Response:
    return Response({"error": code, "detail": detail}, status=http_status)
