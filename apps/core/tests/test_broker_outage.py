"""The broker down after a commit: the write still answers 201/202 (its row is committed; a 500 would
make a retrying client store it twice), nothing is sent twice by the request, and the reaper sends what
was never sent on its next pass; trace scores are recorded work the reaper finds too."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerDown

from apps.core.jobs import jobs_reap_all
from apps.core.testing import key_client, tasks_not_sent
from apps.runs.models import TrainingRun
from apps.runs.testing import tiny_config
from apps.traces.models import Trace, TraceScore


def _broker_down():
    return mock.patch("celery.app.task.Task.apply_async", side_effect=BrokerDown("Connection refused"))


@pytest.fixture
def broker_down():
    with _broker_down() as sends:
        yield sends


@pytest.mark.django_db
def test_a_trace_posted_while_the_broker_is_down_is_stored_once_and_scored_later(
        write_client, trace_body, django_capture_on_commit_callbacks):
    body = trace_body()
    with _broker_down() as sends:
        with django_capture_on_commit_callbacks(execute=True):
            first = write_client.post("/api/traces", body, format="json")
        assert first.status_code == 201, first.content
        assert sends.called  # the scoring task was tried after the commit, and failed
        with django_capture_on_commit_callbacks(execute=True):
            again = write_client.post("/api/traces", body, format="json")  # the client retries: no twin
        assert again.status_code == 409 and again.json()["error"] == "duplicate" and Trace.objects.count() == 1
    trace = Trace.objects.get()
    assert trace.score_due_at is not None and trace.score_due_at <= timezone.now() + timedelta(seconds=60)
    assert not TraceScore.objects.exists()

    # The broker is back (eager Celery runs what is sent); the reaper's pass after the retry delay:
    Trace.objects.update(score_due_at=timezone.now() - timedelta(seconds=1))
    assert jobs_reap_all()["trace_scores"]["resent"] == 1
    assert TraceScore.objects.filter(trace=trace).count() == 1
    assert Trace.objects.get().score_due_at is None


@pytest.mark.django_db
def test_a_batch_posted_while_the_broker_is_down_is_stored_and_its_scores_are_due(write_client, trace_body,
                                                                                  broker_down,
                                                                                  django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = write_client.post("/api/traces/batch", {"traces": [trace_body() for _ in range(3)]},
                                     format="json")
    assert response.status_code == 201, response.content
    assert Trace.objects.filter(score_due_at__lte=timezone.now() + timedelta(seconds=60)).count() == 3


@pytest.mark.django_db
def test_a_run_queued_while_the_broker_is_down_answers_202_and_the_reaper_sends_it(
        trainer, dataset, broker_down, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = key_client(trainer).post("/api/tunix/run", {"dataset_id": dataset.pk, "config": tiny_config(),
                                                               "dry_run": False}, format="json")
    assert response.status_code == 202, response.content
    run = TrainingRun.objects.get()
    assert (run.status, run.dispatched_at) == ("queued", None)

    broker_down.side_effect = None
    with tasks_not_sent() as sent, django_capture_on_commit_callbacks(execute=True):
        early = jobs_reap_all(kinds=["training_run"])
    assert early["training_run"]["reenqueued"] == 0  # not yet: its commit was moments ago
    with tasks_not_sent() as sent, django_capture_on_commit_callbacks(execute=True):
        later = jobs_reap_all(kinds=["training_run"], dispatch_retry_seconds=0)
    assert later["training_run"]["reenqueued"] == 1
    assert [call.args[0] for call in sent.call_args_list] == [(str(run.pk),)]
    run.refresh_from_db()
    assert run.dispatched_at is not None


@pytest.mark.django_db
def test_a_sent_run_is_not_sent_again_until_its_message_may_have_been_lost(trainer, dataset,
                                                                           django_capture_on_commit_callbacks):
    with tasks_not_sent(), django_capture_on_commit_callbacks(execute=True):
        key_client(trainer).post("/api/tunix/run", {"dataset_id": dataset.pk, "config": tiny_config(),
                                                    "dry_run": False}, format="json")
    TrainingRun.objects.update(queued_at=timezone.now() - timedelta(minutes=5))
    with tasks_not_sent() as sent, django_capture_on_commit_callbacks(execute=True):
        assert jobs_reap_all(kinds=["training_run"], dispatch_retry_seconds=0)["training_run"]["reenqueued"] == 0
        TrainingRun.objects.update(dispatched_at=timezone.now() - timedelta(hours=1))
        assert jobs_reap_all(kinds=["training_run"], requeue_seconds=600)["training_run"]["reenqueued"] == 1
    assert sent.call_count == 1
