"""A 3-trial sweep of the tiny preset through real workers: each trial trains on the `train` queue and
is scored by its evaluation on the `eval` queue; the worker is killed mid-sweep and a fresh one (with
the reaper) continues it without losing or repeating a trial; the best trial has the best value."""

import pytest

from apps.core.jobs import jobs_reap_all
from apps.core.testing import celery_worker, key_client, wait_for
from apps.evaluations.models import Evaluation
from apps.evaluations.testing import make_eval_set
from apps.runs.models import TrainingRun
from apps.runs.testing import tiny_config
from apps.sweeps.models import SweepJob, SweepTrial
from apps.sweeps.services import sweeps_reconcile_all


def _reap_until_nothing_runs() -> bool:
    jobs_reap_all(stale_seconds=2)
    return not (TrainingRun.objects.filter(status="running").exists()
                or Evaluation.objects.filter(status="running").exists())


def _sweep(pk) -> SweepJob:
    return SweepJob.objects.get(pk=pk)


def _beat_then_ended(pk) -> bool:
    """What beat does on its schedule (the reaper, then the sweeps' reconcile), then whether the sweep ended.
    A worker killed between a job row's commit and its send leaves a queued row only the reaper sends (after
    JOB_DISPATCH_RETRY_SECONDS); one killed holding a message leaves a row the reaper sends again after
    JOB_REQUEUE_SECONDS (10 minutes, here 30 s). Without beat the second worker might never see that trial."""
    jobs_reap_all(requeue_seconds=30)
    sweeps_reconcile_all()
    return _sweep(pk).status in ("completed", "failed")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_three_trial_sweep_survives_a_worker_restart(trainer, dataset):
    make_eval_set()
    client = key_client(trainer)
    body = {"dataset_id": dataset.pk, "base_config": tiny_config(max_steps=12), "n_trials": 3, "seed": 3,
            "search_space": {"learning_rate": {"type": "loguniform", "low": 1e-3, "high": 1e-2}},
            "metric": "answer_accuracy", "eval_set": "small-v1"}
    created = client.post("/api/tuning/jobs", body, format="json")
    assert created.status_code == 201, created.content
    sweep_id = created.json()["id"]
    with celery_worker("train,eval,default") as worker:
        assert client.post(f"/api/tuning/jobs/{sweep_id}/start").status_code == 202
        try:
            wait_for(lambda: SweepTrial.objects.filter(sweep_id=sweep_id, state="complete").exists(), timeout=180,
                     interval=0.5)
        except AssertionError:
            pytest.fail("no trial finished:\n" + worker.output())
        worker.kill()  # the scheduler and whatever trial was training die here
    wait_for(_reap_until_nothing_runs, timeout=30)  # the reaper queues the killed trial's job again
    sweeps_reconcile_all()  # what beat does every minute
    with celery_worker("train,eval,default", purge=False) as worker:
        try:
            wait_for(lambda: _beat_then_ended(sweep_id), timeout=300, interval=2)
        except AssertionError:
            jobs_reap_all(stale_seconds=2)
            pytest.fail(f"sweep {_sweep(sweep_id).status}:\n" + worker.output())
    sweep = _sweep(sweep_id)
    trials = list(SweepTrial.objects.filter(sweep=sweep).order_by("number"))
    assert sweep.status == "completed", sweep.error
    assert [t.number for t in trials] == [0, 1, 2] and len({t.run_id for t in trials}) == 3
    finished = [t for t in trials if t.state == "complete"]
    assert sweep.best_trial.value == max(t.value for t in finished)
    detail = client.get(f"/api/tuning/jobs/{sweep_id}").json()
    assert detail["best_trial"]["number"] == sweep.best_trial.number and len(detail["trials"]) == 3
