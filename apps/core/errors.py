"""Domain errors: what services and selectors raise, with no knowledge of HTTP.

A Celery task, a management command or the admin can call any service and catch `DomainError`; the
API's exception handler (apps.core.api.error_handler) maps each class to its status code and the one JSON
error shape `{"error": code, "detail": …}` (plus any `extra` keys).
"""

from __future__ import annotations


class DomainError(Exception):
    code = "error"
    default_detail = "The request could not be completed."

    def __init__(self, detail=None, *, code: str | None = None, extra: dict | None = None):
        self.detail = self.default_detail if detail is None else detail
        if code:
            self.code = code
        self.extra = extra or {}
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """One readable line, e.g. for a job's stored error or a command's output."""
        if isinstance(self.detail, dict):
            return "; ".join(f"{key}: {' '.join(map(str, value)) if isinstance(value, list) else value}"
                             for key, value in self.detail.items())
        return str(self.detail)


class NotFound(DomainError):
    """The object does not exist or is outside the caller's reach (the two look the same)."""

    code = "not_found"
    default_detail = "Not found."


class Conflict(DomainError):
    code = "conflict"
    default_detail = "The request conflicts with the current state."


class Invalid(DomainError):
    """Bad input; `detail` maps field paths (`steps[3].content`, `config.lr`) to lists of messages."""

    code = "validation_error"

    def __init__(self, errors: dict, *, code: str | None = None, extra: dict | None = None):
        super().__init__(errors, code=code, extra=extra)


class TooLarge(DomainError):
    code = "payload_too_large"
    default_detail = "Request body is too large."


class Forbidden(DomainError):
    code = "permission_denied"
    default_detail = "You may not do this."


class Unavailable(DomainError):
    """A dependency (database, broker, judge service) cannot serve the request right now."""

    code = "service_unavailable"
    default_detail = "A service this request needs is unavailable; retry later."
