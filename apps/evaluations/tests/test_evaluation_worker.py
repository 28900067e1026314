"""Through real workers (Redis, PostgreSQL): a run trained on the `train` queue is evaluated
automatically on the `eval` queue, and an evaluation whose worker is SIGKILLed mid-way finishes after
the reaper with exactly one prediction per item."""

from pathlib import Path

import pytest

from apps.core.jobs import jobs_reap_all
from apps.core.testing import celery_worker, key_client, wait_for
from apps.evaluations.models import Evaluation, Prediction
from apps.evaluations.selectors import evaluation_metrics
from apps.evaluations.testing import make_eval_set
from apps.runs.models import TrainingRun

MANY = [(f"What is {20 + i} + {i % 7}?", str(20 + i + i % 7), "arithmetic", "in_distribution")
        for i in range(120)]


def _started_or_over(evaluation_id) -> bool:
    if Prediction.objects.filter(evaluation_id=evaluation_id).exists():
        return True
    return Evaluation.objects.get(pk=evaluation_id).status in ("completed", "failed", "cancelled")


def _final(model, pk, worker, timeout=240):
    try:
        wait_for(lambda: model.objects.get(pk=pk).status in ("completed", "failed", "cancelled"), timeout=timeout,
                 interval=0.5)
    except AssertionError:
        pytest.fail(f"{model.__name__} {pk} did not finish:\n{worker.output()}")
    return model.objects.get(pk=pk)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_completed_run_is_evaluated_automatically(trainer, dataset, settings):
    from apps.runs.testing import tiny_config

    make_eval_set()
    settings.AUTO_EVAL_SET = "small-v1"
    with celery_worker("train,eval", env={"AUTO_EVAL_SET": "small-v1"}) as worker:
        response = key_client(trainer).post("/api/tunix/run", {"dataset_id": dataset.pk, "dry_run": False,
                                                               "config": tiny_config(max_steps=20)}, format="json")
        assert response.status_code == 202, response.content
        run_id = response.json()["id"]
        assert _final(TrainingRun, run_id, worker).status == "completed"
        wait_for(lambda: Evaluation.objects.filter(run_id=run_id).exists(), timeout=30)
        evaluation = _final(Evaluation, Evaluation.objects.get(run_id=run_id).pk, worker)
    assert evaluation.status == "completed" and evaluation.auto, evaluation.error
    assert Prediction.objects.filter(evaluation=evaluation).count() == 6
    assert evaluation.metrics == evaluation_metrics(evaluation)  # stored == recomputed from the rows


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_killed_evaluation_finishes_with_one_prediction_per_item(trainer, completed_run):
    make_eval_set(name="many", items=MANY)
    with celery_worker("eval") as worker:  # started first: a worker's start empties its queues
        response = key_client(trainer).post(f"/api/tunix/runs/{completed_run.pk}/evaluate",
                                            {"eval_set": "many-v1", "batch_size": 1, "max_new_tokens": 128},
                                            format="json")
        assert response.status_code == 202, response.content
        evaluation_id = response.json()["id"]
        try:
            wait_for(lambda: _started_or_over(evaluation_id), timeout=120, interval=0.1)
        except AssertionError:
            pytest.fail("no progress:\n" + worker.output())
        worker.kill()
    evaluation = Evaluation.objects.get(pk=evaluation_id)
    assert evaluation.status == "running", (evaluation.status, evaluation.error, worker.output())
    stored_before = Prediction.objects.filter(evaluation_id=evaluation_id).count()
    assert 0 < stored_before < 120
    wait_for(lambda: jobs_reap_all(stale_seconds=2)["evaluation"]["requeued"] == 1, timeout=30)
    with celery_worker("eval", purge=False) as worker:
        evaluation = _final(Evaluation, evaluation_id, worker)
    assert (evaluation.status, evaluation.attempt) == ("completed", 2), evaluation.error
    predictions = Prediction.objects.filter(evaluation=evaluation)
    assert predictions.count() == 120 == predictions.values("item").distinct().count()
    assert evaluation.metrics["count"] == 120


def _evaluators_of(evaluation_id) -> list[int]:
    """Pids of evaluator processes still working on this evaluation (its items file is in their command)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = (entry / "stat").read_text().split(") ")[1][0]
            except OSError:
                continue
            if str(evaluation_id) in command and "training evaluate" in command and state != "Z":
                pids.append(int(entry.name))
    return pids


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_running_evaluation_is_cancelled_with_its_child_gone_and_its_predictions_kept(trainer, completed_run):
    make_eval_set(name="many", items=MANY * 20)  # long enough (about 20 s) to be cancelled half-way
    client = key_client(trainer)
    with celery_worker("eval") as worker:
        response = client.post(f"/api/tunix/runs/{completed_run.pk}/evaluate",
                               {"eval_set": "many-v1", "batch_size": 1, "max_new_tokens": 128}, format="json")
        evaluation_id = response.json()["id"]
        try:
            wait_for(lambda: _started_or_over(evaluation_id), timeout=120, interval=0.1)
        except AssertionError:
            pytest.fail("no progress:\n" + worker.output())
        cancel = client.post(f"/api/evaluations/{evaluation_id}/cancel")
        assert cancel.status_code == 202, cancel.content
        evaluation = _final(Evaluation, evaluation_id, worker, timeout=60)
        assert not _evaluators_of(evaluation_id)
    assert evaluation.status == "cancelled" and evaluation.error_code == "cancelled", evaluation.error
    kept = Prediction.objects.filter(evaluation=evaluation).count()
    assert 0 < kept < len(MANY) * 20 and evaluation.progress_done == kept
    again = client.post(f"/api/evaluations/{evaluation_id}/cancel")
    assert again.status_code == 409 and again.json()["error"] == "evaluation_finished"
