from celery import shared_task

from apps.traces.services import trace_scores_compute


@shared_task(name="apps.traces.tasks.trace_scores_compute_task")
def trace_scores_compute_task(trace_ids: list[str]) -> int:
    return trace_scores_compute(trace_ids=trace_ids)
