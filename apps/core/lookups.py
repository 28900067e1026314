"""Looking rows up by a client-supplied id: a malformed id, an unknown one and one outside the
caller's reach all answer the same NotFound (SPEC §7: objects out of reach are 404)."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from apps.core.errors import NotFound


def as_uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def get_by_uuid(queryset: QuerySet, value, *, what: str):
    """The row of `queryset` (already limited to what the caller may see) whose UUID key is `value`."""
    key = as_uuid(value)
    row = queryset.filter(pk=key).first() if key is not None else None
    if row is None:
        raise NotFound(f"No such {what}.")
    return row
