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

from django.conf import settings
from django.db import transaction

from apps.core.errors import Conflict, Invalid, NotFound
from apps.core.jobs import job_cancel, job_dispatch
from apps.core.notify import notify
from apps.core.paths import folder_problem
from apps.datasets.models import DatasetVersion, Split
from apps.datasets.selectors import dataset_get
from apps.runs.models import TrainingRun
from apps.runs.signals import training_run_finished
from training.config import ConfigError, TrainConfig

REQUEST_KEYS = ("dataset_id", "config", "dry_run", "split", "max_attempts", "auto_evaluate")
MAX_ATTEMPTS_LIMIT = 10


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
    if backend == "tunix":
        return importlib.util.find_spec("tunix") is not None
    return importlib.util.find_spec("jax") is not None


def training_run_plan(*, data, user) -> tuple[RunPlan, bool]:
    """Validate a run request body; returns (plan, dry_run). Invalid names every bad field."""
    if not isinstance(data, dict):
        raise Invalid({"non_field_errors": ["The body must be a JSON object."]})
    errors = {key: [f"Unknown field; allowed: {', '.join(REQUEST_KEYS)}."]
              for key in sorted(set(data) - set(REQUEST_KEYS), key=str)}
    dataset_id = data.get("dataset_id")
    if not isinstance(dataset_id, str) or not dataset_id:
        errors["dataset_id"] = ["Give the id of a dataset version, e.g. 'dev-reasoning-v1'."]
    split = data.get("split", Split.TRAIN)
    if split not in Split.values:
        errors["split"] = [f"Must be one of {', '.join(Split.values)}."]
    dry_run, auto_evaluate = data.get("dry_run", True), data.get("auto_evaluate", True)
    for key, value in (("dry_run", dry_run), ("auto_evaluate", auto_evaluate)):
        if not isinstance(value, bool):
            errors[key] = ["Must be true or false."]
    max_attempts = data.get("max_attempts", 3)
    if type(max_attempts) is not int or not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT:
        errors["max_attempts"] = [f"Must be an integer from 1 to {MAX_ATTEMPTS_LIMIT}."]
    config = train_config_from_request(data.get("config"), errors)
    if errors:
        raise Invalid(errors)
    try:
        dataset = dataset_get(user=user, dataset_id=dataset_id, with_manifest=False)
    except NotFound:
        raise Invalid({"dataset_id": [f"No dataset version {dataset_id!r}."]}) from None
    plan = RunPlan(dataset=dataset, split=split, config=config, max_attempts=max_attempts,
                   auto_evaluate=auto_evaluate)
    if plan.examples == 0:
        raise Invalid({"split": [f"Split {split!r} of {dataset.pk} holds no traces."]})
    return plan, dry_run


def train_config_from_request(raw, errors: dict, *, field: str = "config") -> TrainConfig | None:
    """The TrainConfig a request names under `field`, or None with every problem added to `errors`
    (`field.key` paths); a Gemma `model_dir` must be a folder inside TUNIXRT_MODELS_DIR. Direct runs,
    sweeps and imports all validate their configs here."""
    if raw is None:
        errors[field] = ["Give a TrainConfig object (backend, model, max_steps, …)."]
        return None
    try:
        config = TrainConfig.from_dict(raw)
    except ConfigError as exc:
        errors.update({f"{field}.{key}": messages for key, messages in exc.errors.items()})
        return None
    if config.model_dir is not None:
        problem = model_dir_problem(config.model_dir)
        if problem:
            errors[f"{field}.model_dir"] = [problem]
            return None
    return config


def model_dir_problem(model_dir: str) -> str | None:
    """A client may name a model folder only inside TUNIXRT_MODELS_DIR (relative to it); the message
    names the folder the client gave, never where the server keeps it."""
    return folder_problem(settings.MODELS_DIR, model_dir, what="the server's models folder")


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
        max_steps=config.max_steps, created_by=user if user is not None and user.is_authenticated else None,
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


