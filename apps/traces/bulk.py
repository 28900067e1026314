"""Fast bulk insert of new Trace rows.

Rows arrive as plain column dicts (see services._trace_fields), not model instances: building
1,000 Trace objects and asking each field for its database value cost more than the insert.
On PostgreSQL rows go in with COPY, which skips the per-parameter query rewriting that makes a
15,000-parameter INSERT slow; a unique-hash race (another request storing the same content at the
same moment) raises IntegrityError, and the caller falls back to INSERT … ON CONFLICT DO NOTHING.
"""

from django.db import connection

from apps.core.db import copy_rows
from apps.traces.models import Trace
from training.trace_schema import compact_json_bytes

_COPY_COLUMNS = ("id", "created_at", "updated_at", "trace_version", "prompt", "final_answer", "steps", "meta",
                 "source", "category", "tags", "content_hash", "status", "step_count", "created_by_id", "score_due_at")
_JSON_COLUMNS = frozenset({"steps", "meta", "tags"})


def _json_text(value):
    # jsonb accepts JSON text in COPY (it re-orders keys itself); SQL NULL, not JSON null, for a
    # missing meta, as the ORM stores it.
    return None if value is None else compact_json_bytes(value).decode("utf-8", "surrogatepass")


def _copy_values(row: dict) -> tuple:
    return tuple(_json_text(row[column]) if column in _JSON_COLUMNS else row[column] for column in _COPY_COLUMNS)


def trace_models(rows: list[dict]) -> list[Trace]:
    return [Trace(**row) for row in rows]


def insert_new_traces(rows: list[dict]) -> None:
    """Insert rows whose content hashes were not stored a moment ago (may raise IntegrityError on a race)."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        Trace.objects.bulk_create(trace_models(rows), batch_size=500)
        return
    copy_rows(Trace, _COPY_COLUMNS, (_copy_values(row) for row in rows))


def stored_ids_by_hash(hashes) -> dict:
    """{content_hash: id} of the stored traces among `hashes`."""
    hashes = list(hashes)
    if connection.vendor != "postgresql":
        return dict(Trace.objects.filter(content_hash__in=hashes).values_list("content_hash", "id"))
    # One array parameter instead of Django's IN (%s, …) with 1,000 placeholders to compile and bind.
    table = connection.ops.quote_name(Trace._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT content_hash, id FROM {table} WHERE content_hash = ANY(%s)", [hashes])
        return dict(cursor.fetchall())
