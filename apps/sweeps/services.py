"""Hyperparameter sweeps (SPEC §6): trials are training runs through the same launcher, sampled by
Optuna's ask-and-tell API with a seeded sampler.

The study is rebuilt from the trial rows every time a trial is asked for (finished trials with
their values, running ones as running), so nothing but the database holds it: a scheduler that
restarts neither forgets nor repeats a trial. Asking, storing the trial and queueing its run happen
in one transaction under a lock on the sweep row, so two concurrent advances cannot over-launch.

A trial is settled from the rows of its run and its run's automatic evaluation (`trial_settle`), the one
rule both paths use: the end announcements of runs and evaluations settle it at once, and the beat's
reconcile pass settles whatever an announcement missed, so no sequence of kills, losses and cancels can
leave a sweep waiting forever.
"""

from __future__ import annotations

import logging

import optuna
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from apps.core.authentication import author
from apps.core.errors import Conflict, DomainError, Invalid, NotFound
from apps.core.jobs import job_dispatch
from apps.core.models import ACTIVE_JOB_STATUSES, JobStatus
from apps.core.validation import validated
from apps.datasets.selectors import dataset_get
from apps.evaluations.models import EvalSet, Evaluation
from apps.evaluations.selectors import metric_value
from apps.evaluations.services import evaluation_auto_request, evaluation_cancel
from apps.runs.models import TrainingRun
from apps.runs.services import training_run_cancel, training_run_create
from apps.sweeps.models import SweepJob, SweepTrial
from apps.sweeps.requests import SweepRequestSerializer
from training.config import TrainConfig

logger = logging.getLogger(__name__)
optuna.logging.set_verbosity(optuna.logging.WARNING)

RUN_METRIC = "final_loss"


# --- creating --------------------------------------------------------------------------------------

def sweep_create(*, data, user=None) -> SweepJob:
    """Validate a sweep (SweepRequestSerializer) and store it `created`."""
    values = validated(SweepRequestSerializer, data)
    metric = values["metric"]
    eval_set = None
    if metric != RUN_METRIC:
        name = values.get("eval_set") or settings.AUTO_EVAL_SET
        eval_set = EvalSet.objects.filter(pk=name).first()
        if eval_set is None:
            raise Invalid({"eval_set": [f"No eval set {name!r} to score the trials on (run manage.py "
                                        "seed_datasets)."]})
    try:
        dataset = dataset_get(user=user, dataset_id=values["dataset_id"], with_manifest=False)
    except NotFound:
        raise Invalid({"dataset_id": ["Give the id of a dataset version to train the trials on."]}) from None
    if dataset.train_count == 0:
        raise Invalid({"dataset_id": [f"{dataset.pk} has no training split to train the trials on."]})
    return SweepJob.objects.create(
        name=values["name"], dataset_version=dataset, base_config=values["base_config"].to_dict(),
        search_space=values["search_space"], metric=metric,
        direction=values.get("direction") or ("minimize" if metric == RUN_METRIC else "maximize"),
        n_trials=values["n_trials"], max_concurrent=values["max_concurrent"], seed=values["seed"],
        eval_set=eval_set, eval_limit=values.get("eval_limit"), created_by=author(user))


def _distribution(spec: dict):
    if spec["type"] == "choice":
        return CategoricalDistribution(spec["values"])
    if spec["type"] == "randint":
        return IntDistribution(spec["low"], spec["high"])
    return FloatDistribution(spec["low"], spec["high"], log=spec["type"] == "loguniform")


# --- running ---------------------------------------------------------------------------------------

def sweep_start(*, sweep: SweepJob) -> SweepJob:
    if SweepJob.objects.filter(pk=sweep.pk, status="created").update(status="running", started_at=timezone.now()) != 1:
        sweep.refresh_from_db()
        raise Conflict(f"The sweep is {sweep.status}; only a created sweep can start.", code="sweep_not_created")
    sweep_advance(sweep_id=sweep.pk)
    sweep.refresh_from_db()
    return sweep


def sweep_advance(*, sweep_id) -> int:
    """Launch trials up to max_concurrent and n_trials, or finish the sweep; returns trials launched."""
    with transaction.atomic():
        sweep = SweepJob.objects.select_for_update().filter(pk=sweep_id, status="running").first()
        if sweep is None:
            return 0
        trials = list(sweep.trials.order_by("number"))
        running = sum(t.state == "running" for t in trials)
        launched = 0
        while running < sweep.max_concurrent and len(trials) < sweep.n_trials:
            trials.append(_launch_trial(sweep, trials))
            running += 1
            launched += 1
        if running == 0 and len(trials) >= sweep.n_trials:
            _finish(sweep, trials)
    return launched


def _ask(sweep: SweepJob, trials: list[SweepTrial]) -> dict:
    distributions = {name: _distribution(spec) for name, spec in sweep.search_space.items()}
    # A fresh seeded sampler per ask, fed the whole history: the same history gives the same answer.
    study = optuna.create_study(direction=sweep.direction,
                                sampler=optuna.samplers.TPESampler(seed=sweep.seed + len(trials)))
    for trial in trials:
        state = {"complete": TrialState.COMPLETE, "running": TrialState.RUNNING}.get(trial.state, TrialState.FAIL)
        study.add_trial(create_trial(state=state, params=trial.params, distributions=distributions,
                                     value=trial.value if state == TrialState.COMPLETE else None))
    return study.ask(distributions).params


def _launch_trial(sweep: SweepJob, trials: list[SweepTrial]) -> SweepTrial:
    params = _ask(sweep, trials)
    config = TrainConfig.from_dict({**sweep.base_config, **params})
    run = training_run_create(dataset=sweep.dataset_version, config=config, user=sweep.created_by,
                              auto_evaluate=sweep.metric != RUN_METRIC, auto_eval_set=sweep.eval_set_id or "",
                              auto_eval_limit=sweep.eval_limit)
    trial = SweepTrial.objects.create(sweep=sweep, number=len(trials), params=params, run=run)
    job_dispatch(TrainingRun, run.pk)
    return trial


def _finish(sweep: SweepJob, trials: list[SweepTrial]) -> None:
    done = [t for t in trials if t.state == "complete" and t.value is not None]
    pick = max if sweep.direction == "maximize" else min
    best = pick(done, key=lambda t: (t.value, -t.number)) if done else None
    sweep.status = "completed" if best else "failed"
    sweep.best_trial = best
    sweep.finished_at = timezone.now()
    sweep.error = "" if best else "No trial produced a value; see the trials' errors."
    sweep.save(update_fields=["status", "best_trial", "finished_at", "error"])


# --- settling trials ---------------------------------------------------------------------------------

def trial_settle(trial: SweepTrial) -> bool:
    """Record a running trial's value or failure if its run (and evaluation) say it has ended, then advance
    the sweep; True when the trial was settled now. Safe to call any number of times."""
    outcome = _trial_outcome(trial)
    if outcome is None:
        return False
    value, failure = outcome
    state = "complete" if value is not None else "failed"
    if not SweepTrial.objects.filter(pk=trial.pk, state="running").update(state=state, value=value, error=failure,
                                                                         finished_at=timezone.now()):
        return False
    sweep_advance(sweep_id=trial.sweep_id)
    return True


def _trial_outcome(trial: SweepTrial) -> tuple[float | None, str] | None:
    """(value, "") or (None, why it failed) once the trial has ended; None while it is still going."""
    run = TrainingRun.objects.get(pk=trial.run_id)
    if run.status in ACTIVE_JOB_STATUSES:
        return None
    if run.status != JobStatus.COMPLETED:
        return None, f"run {run.status}" + (f": {run.error}" if run.error else "")
    if trial.sweep.metric == RUN_METRIC:
        return (run.final_loss, "") if run.final_loss is not None else (None, "the run recorded no final loss")
    evaluation = Evaluation.objects.filter(run=run, auto=True).order_by("-queued_at").first()
    if evaluation is None:
        try:
            evaluation_auto_request(run=run)  # its announcement was lost before it was queued
        except DomainError as exc:
            return None, f"auto-evaluation skipped: {exc.message}"
        return None
    if evaluation.status in ACTIVE_JOB_STATUSES:
        return None
    if evaluation.status != JobStatus.COMPLETED:
        return None, f"evaluation {evaluation.status}" + (f": {evaluation.error}" if evaluation.error else "")
    value = metric_value(evaluation.metrics, trial.sweep.metric)
    return (value, "") if value is not None else (None, f"the evaluation has no metric {trial.sweep.metric!r}")


def sweep_trial_run_finished(*, run_id) -> bool:
    """A run's or its evaluation's end was announced: settle its trial, if it is one."""
    trial = SweepTrial.objects.select_related("sweep").filter(run_id=run_id, state="running").first()
    return trial_settle(trial) if trial is not None else False


def sweeps_reconcile_all() -> int:
    """Beat's pass: settle every running trial whose run or evaluation ended without being heard, then
    advance every running sweep; returns how many trials it settled."""
    settled = 0
    for sweep_id in SweepJob.objects.filter(status="running").values_list("pk", flat=True):
        for trial in SweepTrial.objects.select_related("sweep").filter(sweep_id=sweep_id, state="running"):
            settled += trial_settle(trial)
        sweep_advance(sweep_id=sweep_id)
    return settled


def sweep_cancel(*, sweep: SweepJob) -> SweepJob:
    """Stop launching, cancel running trial runs and their evaluations, and end the sweep `cancelled`."""
    with transaction.atomic():
        if SweepJob.objects.filter(pk=sweep.pk, status__in=["created", "running"]).update(
                status="cancelled", finished_at=timezone.now()) != 1:
            sweep.refresh_from_db()
            raise Conflict(f"The sweep is already {sweep.status}.", code="sweep_finished")
        running = list(sweep.trials.filter(state="running").select_related("run"))
        SweepTrial.objects.filter(pk__in=[t.pk for t in running]).update(state="cancelled", error="sweep cancelled",
                                                                          finished_at=timezone.now())
    for trial in running:
        _cancel_if_active(training_run_cancel, run=trial.run)
        for evaluation in Evaluation.objects.filter(run=trial.run, status__in=ACTIVE_JOB_STATUSES):
            _cancel_if_active(evaluation_cancel, evaluation=evaluation)
    sweep.refresh_from_db()
    return sweep


def _cancel_if_active(cancel, **target) -> None:
    try:
        cancel(**target)
    except Conflict:
        pass  # it had already finished
