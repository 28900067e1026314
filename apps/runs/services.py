"""Training-run writes: plan (validate + dry-run report), submit, cancel.

A run request is validated completely before anything is stored: the dataset version must be
visible to the caller and hold examples in the chosen split, the TrainConfig must validate (every
bad key named), and a Gemma `model_dir` must lie inside TUNIXRT_MODELS_DIR. `dry_run` (the default)
answers with the plan only; otherwise the run is stored `queued` and its launcher task is sent after
the commit.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from django.db import transaction

from apps.core.authentication import author
from apps.core.errors import Conflict, Invalid, NotFound
from apps.core.jobs import job_cancel, job_dispatch
from apps.core.notify import notify
from apps.core.validation import validated
from apps.datasets.models import DatasetVersion
from apps.datasets.selectors import dataset_get
from apps.runs.models import TrainingRun
from apps.runs.requests import RunRequestSerializer
from apps.runs.signals import training_run_finished
from training.config import TrainConfig


@dataclass(frozen=True)
class RunPlan:
    dataset: DatasetVersion
    split: str
    config: TrainConfig
    max_attempts: int = 3
    auto_evaluate: bool = True

    @property
    def examples(self) -> int:
        return self.dataset.split_counts[self.split]

    def report(self) -> dict:
        """What a dry run answers: everything the run would use, and what it would cost."""
        config = self.config
        tokens_per_step = config.examples_per_step * config.max_seq_len
        return {
            "dataset": {"id": self.dataset.pk, "content_hash": self.dataset.content_hash, "split": self.split,
                        "examples": self.examples},
            "config": config.to_dict(),
            "config_hash": config.config_hash(),
            "estimate": {
                "examples_per_step": config.examples_per_step,
                "epochs": round(config.max_steps * config.examples_per_step / self.examples, 3),
                "tokens_per_step": tokens_per_step,
                "total_tokens": tokens_per_step * config.max_steps,
            },
            "backend_available": backend_available(config.backend),
            "max_attempts": self.max_attempts,
            "auto_evaluate": self.auto_evaluate,
        }


def backend_available(backend: str) -> bool:
    """Whether this host can import what the backend trains with (the builtin one needs only JAX)."""
    if backend == "tunix":
        return importlib.util.find_spec("tunix") is not None
    return importlib.util.find_spec("jax") is not None


def training_run_plan(*, data, user) -> tuple[RunPlan, bool]:
    """Validate a run request body (RunRequestSerializer); returns (plan, dry_run). Invalid names every
    bad field."""
    values = validated(RunRequestSerializer, data)
    try:
        dataset = dataset_get(user=user, dataset_id=values["dataset_id"], with_manifest=False)
    except NotFound:
        raise Invalid({"dataset_id": [f"No dataset version {values['dataset_id']!r}."]}) from None
    plan = RunPlan(dataset=dataset, split=values["split"], config=values["config"],
                   max_attempts=values["max_attempts"], auto_evaluate=values["auto_evaluate"])
    if plan.examples == 0:
        raise Invalid({"split": [f"Split {plan.split!r} of {dataset.pk} holds no traces."]})
    return plan, values["dry_run"]


def training_run_submit(*, plan: RunPlan, user=None) -> TrainingRun:
    """Store the planned run `queued` and send its launcher task after the commit."""
    with transaction.atomic():
        run = training_run_create(dataset=plan.dataset, config=plan.config, user=user, split=plan.split,
                                  max_attempts=plan.max_attempts, auto_evaluate=plan.auto_evaluate)
        job_dispatch(TrainingRun, run.pk)
    return run


def training_run_create(*, dataset: DatasetVersion, config: TrainConfig, user=None, **fields) -> TrainingRun:
    """The one place a TrainingRun row is made from a validated config (direct runs, sweep trials, imports);
    `fields` sets the rest (split, attempts, auto-evaluation, or an imported run's outcome)."""
    return TrainingRun.objects.create(
        dataset_version=dataset, dataset_content_hash=dataset.content_hash, config=config.to_dict(),
        config_hash=config.config_hash(), backend=config.backend, model=config.model, seed=config.seed,
        max_steps=config.max_steps, created_by=author(user),
        **fields)


def enqueue_training_run(run_id) -> None:
    from apps.runs.tasks import training_run_task

    training_run_task.delay(str(run_id))


def run_topic(run_id) -> str:
    """The notification topic live followers of a run wait on."""
    return f"run:{run_id}"


def training_run_announce_finished(run_id, status: str) -> None:
    """A run's job ended (recorded by its attempt, a cancel while queued, or the reaper): wake its
    followers and tell the apps above (auto-evaluation, sweeps)."""
    notify(run_topic(run_id))
    training_run_finished.send(sender=TrainingRun, run_id=run_id, status=status)


def training_run_cancel(*, run: TrainingRun) -> TrainingRun:
    """Stop a run: a queued one is cancelled at once; a running one stops at its next step (the
    launcher writes the cancel file, then escalates to SIGTERM and SIGKILL)."""
    if job_cancel(TrainingRun, run.pk) is None:
        run.refresh_from_db()
        raise Conflict(f"The run is already {run.status}; only queued or running runs can be cancelled.",
                       code="run_finished", extra={"status": run.status})
    run.refresh_from_db()
    return run


