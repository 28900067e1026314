"""Parsers for NDJSON uploads (raw body or multipart), limited to settings.INGEST_MAX_BYTES."""

from django.conf import settings
from rest_framework import parsers

from apps.core.errors import TooLarge
from apps.core.lookups import as_int
from apps.core.parsers import read_limited, view_body_limit

# Room for the multipart boundaries and the small form fields around the file.
MULTIPART_OVERHEAD = 64 * 1024


class NDJSONParser(parsers.BaseParser):
    """`application/x-ndjson`: returns the raw bytes, size-checked while reading."""

    media_type = "application/x-ndjson"

    def parse(self, stream, media_type=None, parser_context=None):
        return read_limited(stream, parser_context, settings.INGEST_MAX_BYTES)


class JSONLinesParser(NDJSONParser):
    """The same body under the JSON Lines media type."""

    media_type = "application/jsonl"


class LimitedMultiPartParser(parsers.MultiPartParser):
    """Multipart upload whose declared size is checked before a single file byte is spooled; the limit
    is the view's `max_body_bytes`."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = parser_context["request"]
        declared = request.META.get("CONTENT_LENGTH") or ""
        limit = view_body_limit(parser_context)
        size = as_int(declared) if declared else None
        if size is not None and size > limit + MULTIPART_OVERHEAD:
            raise TooLarge(f"Upload is {size} bytes; the limit is {limit} bytes.")
        return super().parse(stream, media_type, parser_context)
