"""Registry writes: models, promotion of a completed run to a version, and alias moves behind the
champion gate (whose evidence, like a version's metrics, is in apps.registry.evidence)."""

from __future__ import annotations

import re

from django.db import IntegrityError, transaction
from django.db.models import Max

from apps.core.authentication import author
from apps.core.errors import Conflict, Forbidden, Invalid, NotFound
from apps.core.models import JobStatus
from apps.core.validation import validated
from apps.evaluations.selectors import weights_evidence
from apps.registry import storage
from apps.registry.evidence import champion_check, version_evidence_queue
from apps.registry.integrity import base_record
from apps.registry.models import (
    AliasEvent,
    Blob,
    ModelAlias,
    ModelVersion,
    ModelVersionFile,
    RegisteredModel,
)
from apps.registry.requests import (
    AliasRequestSerializer,
    ModelRequestSerializer,
    PromoteRequestSerializer,
    SweepPromoteRequestSerializer,
    VersionEvaluateRequestSerializer,
)
from apps.registry.selectors import models_visible_to
from apps.registry.verify import checkpoint_load_check
from apps.runs.models import TrainingRun
from apps.runs.selectors import run_checkpoint_steps, runs_visible_to
from apps.runs.storage import RunPaths, read_stored_json, stage_outputs
from training.run_files import RUN_CONFIG_FILE

ALIAS_RE = re.compile(r"[a-z][a-z0-9_-]{0,63}")
CHAMPION = "champion"


def registered_model_create(*, data, user=None) -> RegisteredModel:
    values = validated(ModelRequestSerializer, data)
    name, description = values["name"], values["description"]
    try:
        with transaction.atomic():
            return RegisteredModel.objects.create(name=name, description=description,
                                                  created_by=author(user))
    except IntegrityError:
        raise Conflict(f"A model named {name!r} exists.", code="model_exists") from None


# --- promotion -----------------------------------------------------------------------------------

def model_version_promote(*, model: RegisteredModel, data, user=None) -> tuple[ModelVersion, bool]:
    """A completed run → a version (auto label v1, v2… or a given one); returns (version, created).
    Promoting the same run again returns its version: same files, no second copy.

    An imported run's checkpoint is loaded first (a folder name proves nothing); its evaluation is the
    client's word, so the version's metrics wait for a server evaluation of that checkpoint, which is
    queued here, as it is for any version without one."""
    data = validated(PromoteRequestSerializer, data)
    label = data.get("label")
    run = _promotable_run(data["run_id"], user)
    existing = ModelVersion.objects.filter(model=model, source_run=run).first()
    if existing is not None:
        return existing, False
    step = _checkpoint_step(run)
    if run.imported:
        out = RunPaths.of(run).out
        stage_outputs(run, out, step=step)  # the web host that checks it may not be the one it was imported on
        checkpoint_load_check(out, step)
    # Outside the transaction: copies may be large.
    files = [(artifact.name, *storage.store_blob(run, artifact)) for artifact in storage.version_artifacts(run, step)]
    base = base_record(read_stored_json(run, RUN_CONFIG_FILE), files)  # a Tunix run's base weights, by sha256
    try:
        with transaction.atomic():
            RegisteredModel.objects.select_for_update().get(pk=model.pk)  # one promotion at a time numbers
            version = _create_version(model, run, step, label, files, user, base)
    except IntegrityError:
        existing = ModelVersion.objects.filter(model=model, source_run=run).first()
        if existing is not None:
            return existing, False
        raise Conflict(f"{model.name} already has a version labelled {label!r}.", code="label_exists") from None
    version_evidence_queue(version, user=user)
    return version, True


def _promotable_run(run_id, user) -> TrainingRun:
    runs = runs_visible_to(user) if user is not None else TrainingRun.objects.all()
    run = runs.filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"No training run {run_id!r}.", extra={"field": "run_id"})
    if run.status != JobStatus.COMPLETED:
        raise Invalid({"run_id": [f"Run {run.pk} is {run.status}; only a completed run can be promoted."]})
    return run


def _checkpoint_step(run: TrainingRun) -> int:
    steps = run_checkpoint_steps(run)
    if not steps:
        raise Conflict(f"Run {run.pk} has no recorded checkpoint to promote.", code="no_checkpoint")
    return steps[-1]


def _create_version(model, run, step, label, files, user, base: dict) -> ModelVersion:
    number = (ModelVersion.objects.filter(model=model).aggregate(n=Max("number"))["n"] or 0) + 1
    if label is None:
        label = f"v{number}"
        while ModelVersion.objects.filter(model=model, label=label).exists():
            number += 1
            label = f"v{number}"
    evaluation = weights_evidence(run_id=run.pk, checkpoint_step=step).first()
    version = ModelVersion.objects.create(
        model=model, label=label, number=number, source_run=run, checkpoint_step=step, backend=run.backend,
        model_preset=run.model, config=run.config, config_hash=run.config_hash,
        dataset_version_id=run.dataset_version_id, dataset_content_hash=run.dataset_content_hash,
        code_version=run.code_version, size_bytes=sum(size for _, _, size in files),
        metrics=evaluation.metrics if evaluation else {}, metrics_evaluation=evaluation,
        created_by=author(user), **base)
    for sha256, size in {(sha, size) for _, sha, size in files}:
        Blob.objects.get_or_create(sha256=sha256, defaults={"size_bytes": size})
    ModelVersionFile.objects.bulk_create([ModelVersionFile(version=version, path=path, blob_id=sha256)
                                          for path, sha256, _ in files])
    return version


# --- aliases -------------------------------------------------------------------------------------

def model_alias_move(*, model: RegisteredModel, alias: str, data, user=None, actor_label: str = "") -> AliasEvent:
    """Point `alias` at a version. `champion` moves only on a passing regression check against the
    current champion (reused when stored), or forced by a superuser with a written reason. Every
    attempt is recorded, refused ones included."""
    version, force, reason = _alias_request(model, alias, data)
    current = ModelAlias.objects.filter(model=model, name=alias).select_related("version").first()
    event = AliasEvent(model=model, alias=alias, from_version=current.version if current else None,
                       to_version=version, actor=author(user),
                       actor_label=actor_label, forced=force, reason=reason)
    if alias == CHAMPION and force and not (user is not None and user.is_superuser):
        _refuse(event, "Only a superuser may force the champion alias.")
        raise Forbidden("Only a superuser may force the champion alias; move it through a passing check.")
    if alias == CHAMPION and not force and current is not None and current.version_id != version.pk:
        try:
            check = champion_check(model=model, champion=current.version, candidate=version, user=user)
        except Conflict as exc:  # no comparable evidence: refused, and recorded like any refusal
            _refuse(event, exc.message)
            raise
        event.regression_check = check
        if check.result != "pass":
            _refuse(event, f"regression check failed: {check.metric} {check.current_value:.4f} vs champion "
                           f"{check.baseline_value:.4f}")
            raise Conflict(f"{version} did not pass the regression check against the champion {current.version}.",
                           code="regression_check_failed",
                           extra={"check": {"id": check.pk, "result": check.result, "metric": check.metric,
                                            "baseline_value": check.baseline_value,
                                            "current_value": check.current_value, "delta": check.delta,
                                            "decision": check.decision, "paired_items": check.paired_items,
                                            "minimum_detectable_effect": check.minimum_detectable_effect}})
    if not _move_if_unchanged(event, current.version_id if current else None):
        _refuse(event, "the alias moved while this move was being checked")
        raise Conflict(f"'{alias}' moved while {version} was being checked against it; check again.",
                       code="alias_moved")
    return event


def _move_if_unchanged(event: AliasEvent, checked_against) -> bool:
    """Move the alias only if it still points where the check looked: two moves checked against the
    same champion at once must not both win. The model row's lock orders concurrent moves."""
    with transaction.atomic():
        RegisteredModel.objects.select_for_update().filter(pk=event.model_id).exists()
        now = (ModelAlias.objects.filter(model_id=event.model_id, name=event.alias)
               .values_list("version_id", flat=True).first())
        if now != checked_against:
            return False
        ModelAlias.objects.update_or_create(model_id=event.model_id, name=event.alias,
                                            defaults={"version": event.to_version})
        event.outcome = "moved"
        event.save()
    return True


def _refuse(event: AliasEvent, why: str) -> None:
    event.outcome = "refused"
    event.reason = f"{event.reason} [refused: {why}]".strip() if event.reason else f"refused: {why}"
    event.save()


def _alias_request(model: RegisteredModel, alias: str, data) -> tuple[ModelVersion, bool, str]:
    values = validated(AliasRequestSerializer, data)
    errors: dict = {}
    if not ALIAS_RE.fullmatch(alias):
        errors["alias"] = ["Use 1-64 lowercase letters, digits, '_' or '-', starting with a letter."]
    version = _version_of(model, values["version"], errors)
    if errors:
        raise Invalid(errors)
    return version, values["force"], values["reason"]


def _version_of(model: RegisteredModel, label, errors: dict) -> ModelVersion | None:
    version = ModelVersion.objects.filter(model=model, label=label).first() if isinstance(label, str) else None
    if version is None:
        errors["version"] = [f"{model.name} has no version {label!r}."]
    return version


def model_version_evaluate(*, version: ModelVersion, run: TrainingRun, data, user=None):
    """Evaluate a version: its source run's checkpoint at the version's step (the same weights); returns
    (evaluation, created), the identical active evaluation if there is one."""
    from apps.evaluations.services import evaluation_request_or_existing

    values = validated(VersionEvaluateRequestSerializer, data)
    return evaluation_request_or_existing(run=run, user=user,
                                          data={**values, "checkpoint_step": version.checkpoint_step})


def sweep_best_promote(*, sweep, data, user=None) -> tuple[ModelVersion, bool]:
    """One click from a finished sweep to a version: promote its best trial's run."""
    data = validated(SweepPromoteRequestSerializer, data)
    if sweep.best_trial_id is None:
        raise Conflict(f"The sweep is {sweep.status} and has no best trial yet.", code="no_best_trial")
    models = models_visible_to(user) if user is not None else RegisteredModel.objects.all()
    model = models.filter(name=data["model"]).first()
    if model is None:
        raise NotFound(f"No registered model {data['model']!r}; create it first (POST /api/models).",
                       extra={"field": "model"})
    request = {"run_id": str(sweep.best_trial.run_id)}
    if "label" in data:
        request["label"] = data["label"]
    return model_version_promote(model=model, data=request, user=user)
