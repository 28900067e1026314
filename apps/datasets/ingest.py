"""NDJSON ingest (SPEC §3): one trace per line, validated line by line.

`all_or_nothing` (default) stores every valid line in one transaction or, if any line is invalid,
nothing at all; `skip_invalid` stores the valid lines and reports the rest. Either way every
problem comes back as `{line, error}` (1-based line numbers, as an editor shows them).

Lines are split on `\\n` only (a trailing `\\r` is dropped), decoded as UTF-8 one by one, so a bad
byte costs one line, not the whole upload. Blank lines are skipped and counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction

from apps.core.errors import Invalid, TooLarge
from apps.core.metrics import INGEST_LINES, INGEST_SECONDS
from apps.core.parsers import loads_strict
from apps.traces.services import trace_batch_create
from training.trace_schema import trace_errors

MODES = ("all_or_nothing", "skip_invalid")
MAX_REPORTED_ERRORS = 1000
_BOM = b"\xef\xbb\xbf"


class IngestRejected(Invalid):
    """A rejected upload (400), with the per-line errors alongside the detail."""

    def __init__(self, detail: str, extra: dict):
        super().__init__(detail, extra=extra)


@dataclass
class IngestReport:
    mode: str
    lines: int = 0
    blank_lines: int = 0
    ids: list = field(default_factory=list)
    duplicates: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    error_count: int = 0

    def add_error(self, line: int, error: str, fields: dict | None = None) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"line": line, "error": error, **({"fields": fields} if fields else {})})

    def as_dict(self) -> dict:
        return {"mode": self.mode, "lines": self.lines, "blank_lines": self.blank_lines, "created": len(self.ids),
                "ids": self.ids, "duplicates": self.duplicates, "errors": self.errors,
                "error_count": self.error_count, "errors_truncated": self.error_count > len(self.errors)}


def iter_lines(chunks: Iterable[bytes], max_line_bytes: int) -> Iterator[tuple[int, bytes]]:
    """(1-based number, bytes without the line break) for every line of a chunked byte stream."""
    buffer, number = b"", 0
    for chunk in chunks:
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for raw in complete:
            number += 1
            yield number, raw
        if len(buffer) > max_line_bytes:
            # Refuse a runaway line now rather than buffering the rest of the upload into it.
            raise _line_too_large(number + 1, len(buffer), at_least=True)
    if buffer:
        yield number + 1, buffer


def _line_too_large(number: int, size: int, at_least: bool = False) -> TooLarge:
    return TooLarge(
        f"Line {number} is {'at least ' if at_least else ''}{size} bytes; one trace may be at most "
        f"{settings.TRACE_MAX_BYTES} bytes."
    )


def parse_line(number: int, raw: bytes) -> tuple[dict | None, str | None, dict | None]:
    """(trace, error, field errors) for one non-blank line; exactly one of trace/error is set."""
    try:
        data = loads_strict(raw)
    except ValueError as exc:
        message = str(exc)
        if "UTF-8" not in message:
            message = f"Not valid JSON: {message}"
        return None, message, None
    if not isinstance(data, dict):
        return None, f"Must be a JSON object (one trace), not {_json_kind(data)}.", None
    errors = trace_errors(data)
    if errors:
        summary = "; ".join(f"{path}: {' '.join(messages)}" for path, messages in errors.items())
        return None, f"Invalid trace: {summary}", errors
    return data, None, None


def _json_kind(value) -> str:
    for kind, name in ((list, "an array"), (str, "a string"), (bool, "a boolean"), (int, "a number"),
                       (float, "a number")):
        if isinstance(value, kind):
            return name
    return "null"


def traces_ingest(*, chunks: Iterable[bytes], mode: str = "all_or_nothing", user=None) -> dict:
    """Validate and store an NDJSON upload; raises IngestRejected (400) or TooLarge (413)."""
    if mode not in MODES:
        raise Invalid({"mode": [f"Unknown mode {mode!r}; use one of {', '.join(MODES)}."]})
    report = IngestReport(mode=mode)
    with INGEST_SECONDS.time(), transaction.atomic():
        pending: list[tuple[int, dict]] = []
        for number, raw in iter_lines(chunks, settings.TRACE_MAX_BYTES):
            trace = _read_line(number, raw, report)
            if trace is None or (mode == "all_or_nothing" and report.error_count):
                continue  # keep validating to report every bad line, but store nothing more
            pending.append((number, trace))
            if len(pending) >= settings.TRACE_BATCH_MAX_ITEMS:
                _store(pending, report, user)
                pending = []
        if pending and not (mode == "all_or_nothing" and report.error_count):
            _store(pending, report, user)
        _raise_if_rejected(report)  # inside the transaction: raising rolls back what was stored
    INGEST_LINES.labels("stored").inc(len(report.ids))
    INGEST_LINES.labels("duplicate").inc(len(report.duplicates))
    INGEST_LINES.labels("invalid").inc(report.error_count)
    return report.as_dict()


def _read_line(number: int, raw: bytes, report: IngestReport) -> dict | None:
    if len(raw) > settings.TRACE_MAX_BYTES:
        raise _line_too_large(number, len(raw))
    if number == 1 and raw.startswith(_BOM):
        raw = raw[len(_BOM):]
    raw = raw.removesuffix(b"\r")
    if not raw.strip():
        report.blank_lines += 1
        return None
    report.lines += 1
    trace, error, fields = parse_line(number, raw)
    if error:
        report.add_error(number, error, fields)
    return trace


def _store(pending: list[tuple[int, dict]], report: IngestReport, user) -> None:
    result = trace_batch_create(items=[trace for _, trace in pending], user=user)
    report.ids += result["created"]
    report.duplicates += [{"line": pending[d["index"]][0], "existing_id": d["existing_id"]}
                          for d in result["duplicates"]]


def _raise_if_rejected(report: IngestReport) -> None:
    if report.lines == 0:
        raise Invalid({"file": ["No traces: the upload is empty or holds only blank lines."]})
    valid = report.lines - report.error_count
    if report.error_count and (report.mode == "all_or_nothing" or valid == 0):
        detail = (f"{report.error_count} of {report.lines} lines are invalid; nothing was stored "
                  f"(mode={report.mode}).")
        body = report.as_dict()
        raise IngestRejected(detail, extra={key: body[key] for key in
                                            ("mode", "lines", "errors", "error_count", "errors_truncated")})
