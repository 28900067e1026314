"""Factories for dataset tests."""

from django.utils import timezone

from apps.traces.models import Trace
from apps.traces.services import trace_batch_create
from apps.traces.testing import make_trace_body


def store_traces(n: int, *, status: str = "approved", user=None, meta: dict | None = None,
                 start=None, **overrides) -> list[Trace]:
    """n stored traces with the given status and meta, created one second apart (oldest first)."""
    bodies = []
    for _ in range(n):
        body = make_trace_body(**overrides)
        body["meta"] = {**body["meta"], **(meta or {})}
        bodies.append(body)
    ids = trace_batch_create(items=bodies, user=user)["created"]
    start = start or timezone.now() - timezone.timedelta(days=1)
    for offset, trace_id in enumerate(ids):
        Trace.objects.filter(pk=trace_id).update(status=status, created_at=start + timezone.timedelta(seconds=offset))
    by_id = {str(t.pk): t for t in Trace.objects.filter(pk__in=ids)}
    return [by_id[i] for i in ids]


def build_body(name="unit", version="v1", **extra) -> dict:
    return {"dataset_name": name, "dataset_version": version, **extra}
