"""Finished means finished: a trial is settled from its run's and evaluation's rows, by their end
announcements or by the beat's reconcile pass, so no sequence of kills, losses and cancels stalls a sweep
(a `max_concurrent=1` sweep is the one that would wait forever)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.jobs import jobs_reap_all
from apps.core.testing import tasks_not_sent
from apps.evaluations.models import Evaluation
from apps.evaluations.testing import make_eval_set
from apps.runs.models import RunArtifact, TrainingRun
from apps.runs.services import training_run_cancel
from apps.runs.testing import tiny_config
from apps.sweeps.models import SweepJob, SweepTrial
from apps.sweeps.services import sweep_cancel, sweep_create, sweep_start, sweeps_reconcile_all

SPACE = {"learning_rate": {"type": "loguniform", "low": 1e-4, "high": 1e-2}}


@pytest.fixture(autouse=True)
def no_queue():
    with tasks_not_sent():
        yield


def _sweep(trainer, dataset, **extra) -> SweepJob:
    body = {"dataset_id": dataset.pk, "base_config": tiny_config(), "search_space": SPACE, "n_trials": 2,
            "max_concurrent": 1, "metric": "final_loss", **extra}
    return sweep_start(sweep=sweep_create(data=body, user=trainer))


def _running_trial(sweep) -> SweepTrial:
    return SweepTrial.objects.get(sweep=sweep, state="running")


def _completed_with_a_checkpoint(trial, **fields) -> None:
    """The trial's run ended (its announcement unheard) and left a checkpoint to evaluate."""
    TrainingRun.objects.filter(pk=trial.run_id).update(status="completed", **fields)
    RunArtifact.objects.create(run_id=trial.run_id, name="checkpoints/12/params", kind="checkpoint", size_bytes=1,
                               sha256="0" * 64)


@pytest.mark.django_db
def test_a_run_that_ended_unheard_is_settled_by_the_reconcile_pass(trainer, dataset):
    sweep = _sweep(trainer, dataset)
    trial = _running_trial(sweep)
    TrainingRun.objects.filter(pk=trial.run_id).update(status="completed", final_loss=0.25)  # no announcement
    assert sweeps_reconcile_all() == 1
    trial.refresh_from_db()
    assert (trial.state, trial.value) == ("complete", 0.25)
    assert sweep.trials.filter(state="running").count() == 1  # the next trial was launched


@pytest.mark.django_db
def test_a_run_cancelled_while_queued_ends_its_trial_at_once(trainer, dataset):
    sweep = _sweep(trainer, dataset)
    trial = _running_trial(sweep)
    training_run_cancel(run=trial.run)  # a queued cancel is an end like any other: it is announced
    trial.refresh_from_db()
    assert trial.state == "failed" and "run cancelled" in trial.error
    assert sweep.trials.count() == 2


@pytest.mark.django_db
def test_a_run_the_reaper_gives_up_on_ends_its_trial(trainer, dataset):
    sweep = _sweep(trainer, dataset)
    trial = _running_trial(sweep)
    TrainingRun.objects.filter(pk=trial.run_id).update(status="running", attempt=1, max_attempts=1,
                                                       heartbeat_at=timezone.now() - timedelta(hours=1))
    assert jobs_reap_all(kinds=["training_run"])["training_run"]["failed"] == 1
    trial.refresh_from_db()
    assert trial.state == "failed" and "gave up after 1 of 1" in trial.error


@pytest.mark.django_db
def test_a_run_lost_and_retried_keeps_its_trial_running(trainer, dataset):
    sweep = _sweep(trainer, dataset)
    trial = _running_trial(sweep)
    TrainingRun.objects.filter(pk=trial.run_id).update(status="running", attempt=1, max_attempts=3,
                                                       heartbeat_at=timezone.now() - timedelta(hours=1))
    assert jobs_reap_all(kinds=["training_run"])["training_run"]["requeued"] == 1
    sweeps_reconcile_all()
    trial.refresh_from_db()
    assert trial.state == "running"  # the retry carries on; nothing marked it failed


@pytest.mark.django_db
def test_an_evaluation_metric_waits_for_the_evaluation_even_if_its_queueing_was_never_heard(trainer, dataset):
    make_eval_set()
    sweep = _sweep(trainer, dataset, metric="answer_accuracy", eval_set="small-v1")
    trial = _running_trial(sweep)
    _completed_with_a_checkpoint(trial, final_loss=0.5)
    sweeps_reconcile_all()
    evaluation = Evaluation.objects.get(run_id=trial.run_id, auto=True)  # the reconcile pass queued it
    trial.refresh_from_db()
    assert trial.state == "running"
    Evaluation.objects.filter(pk=evaluation.pk).update(status="completed", metrics={"answer_accuracy": 0.75})
    sweeps_reconcile_all()
    trial.refresh_from_db()
    assert (trial.state, trial.value) == ("complete", 0.75)


@pytest.mark.django_db
def test_a_failed_evaluation_fails_its_trial_with_the_reason(trainer, dataset):
    make_eval_set()
    sweep = _sweep(trainer, dataset, metric="answer_accuracy", eval_set="small-v1")
    trial = _running_trial(sweep)
    _completed_with_a_checkpoint(trial)
    sweeps_reconcile_all()
    Evaluation.objects.filter(run_id=trial.run_id).update(status="failed", error="evaluator exited with code 1")
    sweeps_reconcile_all()
    trial.refresh_from_db()
    assert trial.state == "failed" and trial.error == "evaluation failed: evaluator exited with code 1"


@pytest.mark.django_db
def test_cancelling_a_sweep_cancels_its_trials_evaluations_too(trainer, dataset):
    make_eval_set()
    sweep = _sweep(trainer, dataset, metric="answer_accuracy", eval_set="small-v1")
    trial = _running_trial(sweep)
    _completed_with_a_checkpoint(trial)
    sweeps_reconcile_all()
    sweep_cancel(sweep=sweep)
    assert Evaluation.objects.get(run_id=trial.run_id).status == "cancelled"
    assert SweepTrial.objects.get(pk=trial.pk).state == "cancelled"


@pytest.mark.django_db
def test_a_max_concurrent_one_sweep_finishes_through_any_mix_of_ends(trainer, dataset):
    sweep = _sweep(trainer, dataset, n_trials=3)
    training_run_cancel(run=_running_trial(sweep).run)  # cancelled while queued
    second = _running_trial(sweep)
    TrainingRun.objects.filter(pk=second.run_id).update(status="failed")  # failed, unheard
    sweeps_reconcile_all()
    third = _running_trial(sweep)
    TrainingRun.objects.filter(pk=third.run_id).update(status="completed", final_loss=0.1)
    sweeps_reconcile_all()
    sweep.refresh_from_db()
    assert sweep.status == "completed" and sweep.best_trial_id == third.pk
