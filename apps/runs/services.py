"""Training-run writes: plan (validate + dry-run report), submit, cancel.

A run request is validated completely before anything is stored: the dataset version must be
visible to the caller and hold examples in the chosen split, the TrainConfig must validate (every
bad key named), and a Gemma `model_dir` must lie inside TUNIXRT_MODELS_DIR. `dry_run` (the default)
answers with the plan only; otherwise the run is stored `queued` and its launcher task is sent after
the commit.

A run may start from trained weights (`init_from`): a completed run's checkpoint, or a model version, which
the registry resolves to its source run and step (the registry sits above this app, so it registers its
resolver here; `register_init_source`). A GRPO run needs one; the parent is a builtin or a tunix run, and the
run inherits its backend, model preset and tokenizer (a tunix parent's LoRA adapters keep training under
Tunix's GRPOLearner). An SFT run may continue one: a builtin run of the same preset and tokenizer kind (its
tokenizer is the parent's), trained with a fresh optimizer.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction

from apps.core.authentication import author
from apps.core.errors import Conflict, Invalid, NotFound
from apps.core.jobs import job_cancel, job_dispatch
from apps.core.lookups import as_uuid
from apps.core.models import JobStatus
from apps.core.notify import notify
from apps.core.validation import validated
from apps.datasets.models import DatasetVersion
from apps.datasets.selectors import dataset_get
from apps.runs.models import Algorithm, TrainingRun
from apps.runs.requests import RunRequestSerializer
from apps.runs.selectors import run_checkpoint_steps, runs_visible_to
from apps.runs.signals import training_run_finished
from training.config import TrainConfig
from training.grpo.config import GRPOConfig
from training.init_from import identity_hash


@dataclass(frozen=True)
class InitSource:
    """The weights a run starts from: a completed run and one of its checkpoints (and the version named)."""

    run: TrainingRun
    step: int
    version_id: str | None = None

    def record(self) -> dict:
        """What the run row keeps of its parent: how it was named and what it was."""
        parent = self.run
        return {"run": str(parent.pk), "step": self.step, "version": self.version_id, "algorithm": parent.algorithm,
                "backend": parent.backend, "model": parent.model, "config_hash": parent.config_hash,
                "dataset_id": parent.dataset_version_id, "tokenizer": self.tokenizer,
                "max_seq_len": parent.config.get("max_seq_len") or parent.init_from.get("max_seq_len")}

    @property
    def tokenizer(self) -> str:
        """The parent's tokenizer kind (a GRPO parent's is its own parent's)."""
        return self.run.config.get("tokenizer") or self.run.init_from.get("tokenizer") or "byte"


# kind -> resolver(user=..., ref=...) -> InitSource, raising Invalid on init_from.<kind>
_INIT_SOURCES: dict[str, Callable[..., InitSource]] = {}


def register_init_source(kind: str, resolver: Callable[..., InitSource]) -> None:
    _INIT_SOURCES[kind] = resolver


@dataclass(frozen=True)
class RunPlan:
    dataset: DatasetVersion
    split: str
    config: TrainConfig | GRPOConfig
    max_attempts: int = 3
    auto_evaluate: bool = True
    algorithm: str = Algorithm.SFT
    init: InitSource | None = field(default=None)

    @property
    def examples(self) -> int:
        return self.dataset.split_counts[self.split]

    @property
    def backend(self) -> str:
        return self.init.run.backend if self.algorithm == Algorithm.GRPO else self.config.backend

    @property
    def model(self) -> str:
        return self.init.run.model if self.algorithm == Algorithm.GRPO else self.config.model

    def config_hash(self) -> str:
        """A from-scratch SFT run's TrainConfig hash; a started-from run's identity is its config and where
        it starts (the same config from other weights is another run)."""
        if self.init is None:
            return self.config.config_hash()
        return identity_hash(self.algorithm, self.config.to_dict(),
                             {"config_hash": self.init.run.config_hash, "step": self.init.step})

    def report(self) -> dict:
        """What a dry run answers: everything the run would use, and what it would cost."""
        if self.algorithm == Algorithm.GRPO:
            return self._grpo_report()
        config = self.config
        tokens_per_step = config.examples_per_step * config.max_seq_len
        return {
            "dataset": {"id": self.dataset.pk, "content_hash": self.dataset.content_hash, "split": self.split,
                        "examples": self.examples},
            "config": config.to_dict(),
            "config_hash": self.config_hash(),
            "estimate": {
                "examples_per_step": config.examples_per_step,
                "epochs": round(config.max_steps * config.examples_per_step / self.examples, 3),
                "tokens_per_step": tokens_per_step,
                "total_tokens": tokens_per_step * config.max_steps,
            },
            "backend_available": backend_available(config.backend),
            "max_attempts": self.max_attempts,
            "auto_evaluate": self.auto_evaluate,
            "algorithm": self.algorithm,
            "init_from": self.init.record() if self.init else None,
        }

    def _grpo_report(self) -> dict:
        config = self.config
        return {
            "dataset": {"id": self.dataset.pk, "content_hash": self.dataset.content_hash, "split": self.split,
                        "prompts": self.examples},
            "algorithm": self.algorithm,
            "backend": self.backend,  # the parent's: a tunix parent's GRPO trains with Tunix's GRPOLearner
            "model": self.model,
            "config": config.to_dict(),
            "config_hash": self.config_hash(),
            "init_from": self.init.record(),
            "estimate": {
                "prompts_per_step": config.prompts_per_step,
                "completions_per_step": config.prompts_per_step * config.group_size,
                "epochs": round(config.max_steps * config.prompts_per_step / self.examples, 3),
                "max_new_tokens_per_step": config.prompts_per_step * config.group_size * config.max_new_tokens,
            },
            "backend_available": backend_available(self.backend),
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
    init = init_source(user=user, init_from=values["init_from"]) if values.get("init_from") else None
    plan = RunPlan(dataset=dataset, split=values["split"], config=values["config"],
                   max_attempts=values["max_attempts"], auto_evaluate=values["auto_evaluate"],
                   algorithm=values["algorithm"], init=init)
    if plan.examples == 0:
        raise Invalid({"split": [f"Split {plan.split!r} of {dataset.pk} holds no traces."]})
    _check_init(plan)
    return plan, values["dry_run"]


def init_source(*, user, init_from: dict) -> InitSource:
    """The run and checkpoint `init_from` names ({"run", "step"?} or {"version"}), visible to `user`."""
    if "version" in init_from:
        resolver = _INIT_SOURCES.get("version")
        if resolver is None:
            raise Invalid({"init_from.version": ["This server has no model registry to resolve versions from."]})
        return resolver(user=user, ref=init_from["version"])
    key = as_uuid(init_from["run"])
    parent = runs_visible_to(user).filter(pk=key).first() if key is not None else None
    if parent is None:
        raise Invalid({"init_from.run": [f"No training run {init_from['run']!r}."]})
    return init_from_run(parent, init_from.get("step"), field_name="init_from.run")


def init_from_run(parent: TrainingRun, step: int | None, *, field_name: str, version_id=None) -> InitSource:
    """A completed run and one of its recorded checkpoints (its latest when `step` is None)."""
    if parent.status != JobStatus.COMPLETED:
        raise Invalid({field_name: [f"Run {parent.pk} is {parent.status}; a run starts only from a completed "
                                    "run's weights."]})
    steps = run_checkpoint_steps(parent)
    if not steps:
        raise Invalid({field_name: [f"Run {parent.pk} has no recorded checkpoint."]})
    if step is None:
        step = steps[-1]
    elif step not in steps:
        raise Invalid({"init_from.step": [f"Run {parent.pk} has no checkpoint at step {step}; it has "
                                          f"{', '.join(map(str, steps))}."]})
    return InitSource(run=parent, step=step, version_id=str(version_id) if version_id else None)


GRPO_PARENT_BACKENDS = ("builtin", "tunix")  # training.grpo (builtin) and training.backends.tunix_grpo


def _check_init(plan: RunPlan) -> None:
    """What a parent must be for this run: for GRPO a builtin or tunix run (the GRPO run trains on the
    parent's backend); for SFT a builtin run whose weights fit the model the config builds."""
    if plan.init is None:
        return
    parent = plan.init.run
    where = "init_from.version" if plan.init.version_id else "init_from.run"
    if plan.algorithm == Algorithm.SFT and plan.config.backend != "builtin":
        raise Invalid({"init_from": ["Continuing training from a run's weights is built for the builtin backend "
                                     f"only; this run's backend is {plan.config.backend}."]})
    if plan.algorithm == Algorithm.SFT:
        if parent.backend != "builtin":
            raise Invalid({where: [f"An SFT run continues builtin runs only for now; {parent.pk} is a {parent.backend} "
                                   "run (a GRPO run can start from it)."]})
        _check_sft_parent(plan.config, plan.init)
    elif parent.backend not in GRPO_PARENT_BACKENDS:
        raise Invalid({where: [f"GRPO starts from builtin or tunix runs; {parent.pk} is a {parent.backend} run."]})


def _check_sft_parent(config: TrainConfig, init: InitSource) -> None:
    if init.run.model != config.model:
        raise Invalid({"config.model": [f"The weights of {init.run.pk} are a {init.run.model!r} model; continuing "
                                        f"them needs model {init.run.model!r} (got {config.model!r})."]})
    if init.tokenizer != config.tokenizer:
        raise Invalid({"config.tokenizer": [f"{init.run.pk} was trained with tokenizer {init.tokenizer!r}; a run "
                                            f"continuing it keeps that tokenizer (got {config.tokenizer!r})."]})


def training_run_submit(*, plan: RunPlan, user=None) -> TrainingRun:
    """Store the planned run `queued` and send its launcher task after the commit."""
    with transaction.atomic():
        fields = {"algorithm": plan.algorithm, "backend": plan.backend, "model": plan.model}
        if plan.init is not None:
            fields |= {"config_hash": plan.config_hash(), "init_run": plan.init.run, "init_step": plan.init.step,
                       "init_from": plan.init.record()}
        run = training_run_create(dataset=plan.dataset, config=plan.config, user=user, split=plan.split,
                                  max_attempts=plan.max_attempts, auto_evaluate=plan.auto_evaluate, **fields)
        job_dispatch(TrainingRun, run.pk)
    return run

def training_run_create(*, dataset: DatasetVersion, config: TrainConfig | GRPOConfig, user=None,
                        **fields) -> TrainingRun:
    """The one place a TrainingRun row is made from a validated config (direct runs, sweep trials, imports);
    `fields` sets the rest (split, attempts, auto-evaluation, an imported run's outcome, or a started-from run's
    identity: its hash, its parent's backend and model, and the parent)."""
    identity = {"config": config.to_dict(), "seed": config.seed, "max_steps": config.max_steps}
    if isinstance(config, TrainConfig):
        identity |= {"config_hash": config.config_hash(), "backend": config.backend, "model": config.model}
    return TrainingRun.objects.create(dataset_version=dataset, dataset_content_hash=dataset.content_hash,
                                      created_by=author(user), **(identity | fields))

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

