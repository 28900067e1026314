"""Guards at the edge of the API, before any view runs.

- A NUL character (or a lone surrogate) in the path or a query parameter is refused with a 400 naming
  it, once here, so no view passes one to PostgreSQL (which cannot store it and would answer 500).
  JSON bodies get the same check in apps.core.parsers.
- A body sent with `Transfer-Encoding: chunked` and no Content-Length is refused with 411: Django
  reads a WSGI body by its declared length, so such a body would otherwise arrive empty and fail with a
  misleading validation error.
"""

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import JsonResponse

from apps.core.parsers import unusable_text


def _error(status: int, code: str, detail) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail}, status=status)


class InputGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            refused = self._refuse(request)
            if refused is not None:
                return refused
        return self.get_response(request)

    def _refuse(self, request):
        problems = unusable_text(request.path, "path")
        for key, values in request.GET.lists():
            problems.update(unusable_text(key, f"query.{key!r}"))
            for value in values:
                problems.update(unusable_text(value, f"query.{key}"))
        if problems:
            return _error(400, "validation_error", problems)
        chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not request.META.get("CONTENT_LENGTH"):
            return _error(411, "length_required", "Send the body with a Content-Length header; "
                                                  "chunked uploads are not accepted.")
        return None


def is_connection_error(exception) -> bool:
    """A failure to reach the database (not a bad query): OperationalError/InterfaceError, or a
    DatabaseError whose cause is a connection problem."""
    if isinstance(exception, OperationalError | InterfaceError):
        return True
    cause = exception.__cause__
    return isinstance(exception, DatabaseError) and cause is not None and "connect" in str(cause).lower()
