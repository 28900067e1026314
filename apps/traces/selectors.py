"""Trace reads: visibility, filtered lists, compare."""

import json

from django.db import connection
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.db.models.lookups import Contains

from apps.core.lookups import get_by_uuid
from apps.core.visibility import visibility_scope as _scope
from apps.core.visibility import visible_to
from apps.traces.models import Trace

VIEW_ALL_PERMISSION = "traces.view_all_traces"
# Read-cache namespace (apps.core.readcache) of everything the trace list and detail show.
TRACE_READS = "traces"


def traces_visible_to(user) -> QuerySet[Trace]:
    """Curators, trainers, viewers and superusers see every trace; anyone else only their own."""
    return visible_to(user, Trace.objects.all(), view_all_permission=VIEW_ALL_PERMISSION)


def visibility_scope(user) -> str:
    """Names the set of traces `traces_visible_to(user)` returns; cached reads are keyed by it."""
    return _scope(user, view_all_permission=VIEW_ALL_PERMISSION)


def json_list_contains(field: str, value: str) -> Q:
    """`value` is an element of the JSON list in `field`, on PostgreSQL (jsonb @>) and SQLite alike."""
    if connection.vendor == "postgresql":
        return Q(**{f"{field}__contains": [value]})
    # SQLite has no JSON containment lookup; match the element's JSON encoding inside the list text.
    return Q(Contains(Cast(field, output_field=TextField()), json.dumps(value)))


def trace_list(*, user, filters: dict) -> QuerySet[Trace]:
    traces = traces_visible_to(user)
    for field in ("status", "source", "category"):
        if filters.get(field):
            traces = traces.filter(**{field: filters[field]})
    if filters.get("tag"):
        traces = traces.filter(json_list_contains("tags", filters["tag"]))
    if filters.get("created_after"):
        traces = traces.filter(created_at__gte=filters["created_after"])
    if filters.get("created_before"):
        traces = traces.filter(created_at__lt=filters["created_before"])
    return traces.order_by("-created_at", "-id")


def trace_get(*, user, trace_id) -> Trace:
    """A visible trace or 404; invisible, unknown and malformed ids look the same to the caller."""
    return get_by_uuid(traces_visible_to(user), trace_id, what="trace")


def trace_compare(*, base: Trace, other: Trace) -> dict:
    from apps.traces.scoring import structural_score

    base_score, base_details = structural_score(base.as_trace_json())
    other_score, other_details = structural_score(other.as_trace_json())
    return {
        "base": {"id": str(base.id), "trace": base.as_trace_json(), "status": base.status,
                 "score": base_score, "score_details": base_details},
        "other": {"id": str(other.id), "trace": other.as_trace_json(), "status": other.status,
                  "score": other_score, "score_details": other_details},
        "diff": {
            "same_prompt": base.prompt == other.prompt,
            "same_final_answer": base.final_answer.strip() == other.final_answer.strip(),
            "step_count_delta": other.step_count - base.step_count,
            "score_delta": round(other_score - base_score, 2),
        },
    }
