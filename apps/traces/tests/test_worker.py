"""A real Celery worker, through Redis, scores traces stored by the API."""

import pytest

from apps.core.testing import celery_worker, wait_for
from apps.traces.models import TraceScore


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_worker_scores_a_batch_posted_through_the_api(write_client, trace_body):
    with celery_worker("default") as worker:
        response = write_client.post("/api/traces/batch", [trace_body() for _ in range(3)], format="json")
        assert response.status_code == 201
        ids = set(response.json()["ids"])
        try:
            wait_for(lambda: TraceScore.objects.filter(trace_id__in=ids).count() == 3, timeout=90)
        except AssertionError:
            pytest.fail("worker did not score the traces:\n" + worker.output())
    scores = TraceScore.objects.filter(trace_id__in=ids)
    assert all(s.score == 100.0 for s in scores)
