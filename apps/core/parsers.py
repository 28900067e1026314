"""Request body parsing with a per-view size limit and strict JSON.

The limit is enforced while reading, so a 10 MB body is refused with a 413 after reading one byte
past the limit, whatever Content-Length claims.
"""

import json

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from apps.core.errors import Invalid, TooLarge
from apps.core.lookups import as_int


def view_body_limit(parser_context) -> int:
    view = (parser_context or {}).get("view")
    limit = getattr(view, "max_body_bytes", None)
    return limit() if callable(limit) else (limit or settings.TRACE_MAX_BYTES)


def read_limited(stream, parser_context, limit: int) -> bytes:
    request = (parser_context or {}).get("request")
    declared = request.META.get("CONTENT_LENGTH") if request is not None else None
    size = as_int(declared) if declared else None
    if size is not None and size > limit:
        raise TooLarge(f"Request body is {size} bytes; the limit is {limit} bytes.")
    body = stream.read(limit + 1) if stream is not None else b""
    if len(body) > limit:
        raise TooLarge(f"Request body exceeds the limit of {limit} bytes.")
    return body


def unusable_text(value, path: str = "") -> dict:
    """{path: [message]} for every string (and object key) PostgreSQL could not store: a NUL character
    or a lone surrogate. Checked where JSON enters, so no such value reaches a query as a 500."""
    problems: dict = {}
    if isinstance(value, str):
        if "\x00" in value:
            problems[path or "body"] = ["Must not contain NUL characters."]
        elif _has_lone_surrogate(value):
            problems[path or "body"] = ["Must be valid Unicode (contains a lone surrogate)."]
    elif isinstance(value, dict):
        for key, item in value.items():
            key_path = f"{path}.{key}" if path else str(key)
            problems.update(unusable_text(key, key_path) if isinstance(key, str) else {})
            problems.update(unusable_text(item, key_path))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problems.update(unusable_text(item, f"{path}[{index}]"))
    return problems


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def loads_strict(raw: bytes):
    """JSON from UTF-8 bytes; NaN/Infinity, bad UTF-8 and absurd nesting become ValueError."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"Body is not valid UTF-8 (byte {exc.start}).") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("JSON is nested too deeply.") from None


class LimitedJSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = read_limited(stream, parser_context, view_body_limit(parser_context))
        try:
            data = loads_strict(raw)
        except ValueError as exc:
            raise ParseError(f"Malformed JSON: {exc}") from None
        problems = unusable_text(data)
        if problems:
            raise Invalid(problems)
        return data
