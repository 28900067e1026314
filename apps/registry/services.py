"""Registry writes: models, promotion of a completed run to a version, and alias moves behind the
champion gate (whose evidence, like a version's metrics, is in apps.registry.evidence)."""

from __future__ import annotations

import re

from django.db import IntegrityError, transaction
from django.db.models import Max

from apps.core.errors import Conflict, Forbidden, Invalid, NotFound
from apps.core.lookups import as_int, as_uuid
from apps.core.models import JobStatus
from apps.evaluations.selectors import weights_evidence
from apps.registry import storage
from apps.registry.evidence import champion_check, version_evidence_queue
from apps.registry.integrity import base_record
from apps.registry.models import (
    NAME_RE,
    AliasEvent,
    Blob,
    ModelAlias,
    ModelVersion,
    ModelVersionFile,
    RegisteredModel,
)
from apps.registry.selectors import models_visible_to
from apps.registry.verify import checkpoint_load_check
from apps.runs.models import TrainingRun
from apps.runs.selectors import runs_visible_to
from apps.runs.storage import RunPaths

LABEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
ALIAS_RE = re.compile(r"[a-z][a-z0-9_-]{0,63}")
CHAMPION = "champion"


def registered_model_create(*, data, user=None) -> RegisteredModel:
    if not isinstance(data, dict):
        raise Invalid({"non_field_errors": ["The body must be a JSON object."]})
    errors = {key: ["Unknown field; allowed: name, description."] for key in sorted(set(data) - {"name", "description"},
                                                                                   key=str)}
    name, description = data.get("name"), data.get("description", "")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        errors["name"] = ["Use 1-120 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit."]
    if not isinstance(description, str) or len(description) > 5000:
        errors["description"] = ["Must be text of at most 5,000 characters."]
    if errors:
        raise Invalid(errors)
    try:
        with transaction.atomic():
            return RegisteredModel.objects.create(name=name, description=description,
                                                  created_by=user if user and user.is_authenticated else None)
    except IntegrityError:
        raise Conflict(f"A model named {name!r} exists.", code="model_exists") from None


# --- promotion -----------------------------------------------------------------------------------

def model_version_promote(*, model: RegisteredModel, data, user=None) -> tuple[ModelVersion, bool]:
    """A completed run → a version (auto label v1, v2… or a given one); returns (version, created).
    Promoting the same run again returns its version: same files, no second copy.

    An imported run's checkpoint is loaded first (a folder name proves nothing); its evaluation is the
    client's word, so the version's metrics wait for a server evaluation of that checkpoint, which is
    queued here, as it is for any version without one."""
    if not isinstance(data, dict):
        raise Invalid({"non_field_errors": ["The body must be a JSON object."]})
    errors = {key: ["Unknown field; allowed: run_id, label."] for key in sorted(set(data) - {"run_id", "label"},
                                                                                 key=str)}
    label = data.get("label")
    if label is not None and (not isinstance(label, str) or not LABEL_RE.fullmatch(label)):
        errors["label"] = ["Use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."]
    if not as_uuid(data.get("run_id")):
        errors["run_id"] = ["Give the id (a UUID) of a completed training run."]
    if errors:
        raise Invalid(errors)
    run = _promotable_run(data["run_id"], user)
    existing = ModelVersion.objects.filter(model=model, source_run=run).first()
    if existing is not None:
        return existing, False
    step = _checkpoint_step(run)
    if run.imported:
        checkpoint_load_check(RunPaths.of(run).out, step)
    files = [(path, *storage.store_blob(source)) for path, source in
             storage.version_files(RunPaths.of(run).out, step)]  # outside the transaction: copies may be large
    base = base_record(RunPaths.of(run).out, files)  # a Tunix run's base weights and tokenizer, by sha256
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
    out = RunPaths.of(run).out / "checkpoints"
    steps = sorted(step for step in (as_int(p.name) for p in out.iterdir() if p.is_dir()) if step is not None) \
        if out.is_dir() else []
    if not steps:
        raise Conflict(f"Run {run.pk} has no checkpoint on disk to promote.", code="no_checkpoint")
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
        created_by=user if user is not None and user.is_authenticated else None, **base)
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
                       to_version=version, actor=user if user is not None and user.is_authenticated else None,
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
    if not isinstance(data, dict):
        raise Invalid({"non_field_errors": ["The body must be a JSON object."]})
    errors = {key: ["Unknown field; allowed: version, force, reason."]
              for key in sorted(set(data) - {"version", "force", "reason"}, key=str)}
    if not ALIAS_RE.fullmatch(alias):
        errors["alias"] = ["Use 1-64 lowercase letters, digits, '_' or '-', starting with a letter."]
    force, reason = data.get("force", False), data.get("reason", "")
    if not isinstance(force, bool):
        errors["force"] = ["Must be true or false."]
    if not isinstance(reason, str) or len(reason) > 2000:
        errors["reason"] = ["Must be text of at most 2,000 characters."]
    elif force is True and not reason.strip():
        errors["reason"] = ["A forced move needs a written reason."]
    version = _version_of(model, data.get("version"), errors)
    if errors:
        raise Invalid(errors)
    return version, force, reason


def _version_of(model: RegisteredModel, label, errors: dict) -> ModelVersion | None:
    version = ModelVersion.objects.filter(model=model, label=label).first() if isinstance(label, str) else None
    if version is None:
        errors["version"] = [f"{model.name} has no version {label!r}."]
    return version


def sweep_best_promote(*, sweep, data, user=None) -> tuple[ModelVersion, bool]:
    """One click from a finished sweep to a version: promote its best trial's run."""
    if not isinstance(data, dict):
        raise Invalid({"non_field_errors": ["The body must be a JSON object."]})
    if sweep.best_trial_id is None:
        raise Conflict(f"The sweep is {sweep.status} and has no best trial yet.", code="no_best_trial")
    errors = {key: ["Unknown field; allowed: model, label."] for key in sorted(set(data) - {"model", "label"}, key=str)}
    if not isinstance(data.get("model"), str):
        errors["model"] = ["Give the name of a registered model (create it with POST /api/models)."]
    if errors:
        raise Invalid(errors)
    models = models_visible_to(user) if user is not None else RegisteredModel.objects.all()
    model = models.filter(name=data["model"]).first()
    if model is None:
        raise NotFound(f"No registered model {data['model']!r}; create it first (POST /api/models).",
                       extra={"field": "model"})
    request = {"run_id": str(sweep.best_trial.run_id)}
    if "label" in data:
        request["label"] = data["label"]
    return model_version_promote(model=model, data=request, user=user)
