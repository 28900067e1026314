"""Looking rows up by a client-supplied id: a malformed id, an unknown one and one outside the
caller's reach all answer the same NotFound (SPEC §7: objects out of reach are 404)."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from apps.core.errors import NotFound

# Database keys are signed 64-bit (BigAutoField); a longer number is no key, not a 500 from the driver.
MAX_KEY = 2**63 - 1


def as_int(value, *, maximum: int = MAX_KEY) -> int | None:
    """`value` as a non-negative integer when it is written with ASCII digits only, else None.

    `str.isdigit()` is true for '²' and '١', which `int()` then refuses or reads as another number:
    every client-supplied number in a path or header goes through here instead."""
    text = str(value)
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if number <= maximum else None


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
