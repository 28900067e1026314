"""`POST /api/tunix/runs/import`: a run trained elsewhere (the Kaggle notebook, a TPU box) enters the
product with its metrics, its evaluation and, optionally, its checkpoint, validated like everything
else and stored all or nothing.

The upload is multipart:

- `run` (JSON): `dataset_id` and `dataset_content_hash` (must name a stored dataset version exactly),
  `config` (a valid TrainConfig), `steps_completed`, and optionally `final_loss`, `code_version`,
  `device`, `timings`, `tokens_per_s`.
- `metrics` (NDJSON, optional): one `{"step", "loss", "lr", "grad_norm", "tokens_per_s"}` per step.
- `evaluation` (JSON, optional): `{"eval_set", "section"?, "limit"?, "generation"?}`.
- `predictions` (NDJSON, with `evaluation`): one `{"id": <eval item id>, "output": <raw text>, "tokens"?,
  "latency_s"?, "stopped"?}` per item. Outputs are judged here, with this server's judges: a client's
  own `correct` flags are never trusted.
- `archive` (tar or tar.gz, optional): the run's output folder (checkpoints/, run_config.json, …); every
  member must be a regular file or folder inside it.

The stored evaluation is `source: imported`: the outputs are the client's word, so it ranks only among
imported evaluations and is never gate or model-version evidence (promoting the run queues a server
evaluation of its checkpoint). Its slice is derived here from the item ids it answers: all items, the
first N, all of one section or the first N of one section; anything else is refused (the items a
prefix misses are named), and a `section` or `limit` the client sends must agree with the derived one.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tarfile
import uuid
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework import serializers

from apps.core.authentication import author
from apps.core.errors import DomainError, Invalid, NotFound
from apps.core.paths import folder_problem
from apps.core.validation import (
    RequestSerializer,
    StrictCharField,
    StrictIntegerField,
    StrictNumberField,
    collect,
)
from apps.datasets.models import DatasetVersion
from apps.datasets.selectors import datasets_visible_to
from apps.evaluations import judges as judge_registry
from apps.evaluations.models import EvalSet, Evaluation, EvaluationSource, Prediction
from apps.evaluations.selectors import evaluation_scores
from apps.runs.models import METRIC_FIELDS, RunMetric, TrainingRun
from apps.runs.requests import TrainConfigField
from apps.runs.selectors import run_checkpoint_steps
from apps.runs.services import training_run_create
from apps.runs.storage import RunPaths, discard_outputs, record_artifacts
from training.evaluate import judge

PART_NAMES = ("run", "metrics", "evaluation", "predictions", "archive")


def run_import(*, parts: dict, user=None) -> tuple[TrainingRun, Evaluation | None]:
    errors: dict = {f"{name}": ["Unknown part; send run, metrics, evaluation, predictions, archive."]
                    for name in sorted(set(parts) - set(PART_NAMES))}
    run_data = _json_part(parts, "run", errors, required=True)
    dataset, config, run_values = _run_fields(run_data, errors, user) if run_data is not None else (None, None, None)
    metrics = _metrics(_lines(parts, "metrics", errors), errors)
    evaluation_data = _json_part(parts, "evaluation", errors, required=False)
    eval_set, items = _evaluation(evaluation_data, parts, errors)
    predictions = _predictions(_lines(parts, "predictions", errors), items, errors) if eval_set else []
    evaluation_slice = _slice(eval_set, evaluation_data, predictions, errors) if predictions else None
    archive = parts.get("archive")
    members = _archive_members(archive, errors) if archive is not None else []
    if errors:
        raise Invalid(errors)
    return _store(user, dataset, config, run_values, metrics, eval_set, {**(evaluation_data or {}), **(
        evaluation_slice or {})}, predictions, archive, members)


# --- validation ----------------------------------------------------------------------------------

def _read(part) -> bytes:
    if isinstance(part, str | bytes):
        return part.encode() if isinstance(part, str) else part
    part.seek(0)
    return part.read()


def _json_part(parts, name, errors, *, required):
    if name not in parts:
        if required:
            errors[name] = [f"Send the {name} part (JSON)."]
        return None
    try:
        return json.loads(_read(parts[name]))
    except (ValueError, UnicodeDecodeError):
        errors[name] = ["Must be a JSON object."]
        return None


def _lines(parts, name, errors) -> list[dict]:
    if name not in parts:
        return []
    rows = []
    for number, line in enumerate(_read(parts[name]).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            errors[f"{name}[{number}]"] = ["Not a JSON object."]
            continue
        if not isinstance(row, dict):
            errors[f"{name}[{number}]"] = ["Not a JSON object."]
            continue
        rows.append({**row, "_line": number})
    return rows


class ImportedRunSerializer(RequestSerializer):
    """The `run` part: what the run says about itself (its config validated like a direct run's)."""

    dataset_id = StrictCharField(max_length=200, help_text="the stored dataset version it trained on")
    dataset_content_hash = StrictCharField(max_length=64, help_text="that version's content hash, as a check")
    config = TrainConfigField()
    steps_completed = StrictIntegerField(min_value=0)
    final_loss = StrictNumberField(required=False, allow_null=True)
    code_version = serializers.DictField(required=False, default=dict)
    device = serializers.DictField(required=False, default=dict)
    timings = serializers.DictField(required=False, default=dict)
    tokens_per_s = StrictNumberField(required=False, allow_null=True, min_value=0)


class ImportedEvaluationSerializer(RequestSerializer):
    """The `evaluation` part: which eval set the predictions answer (their slice is derived from their items;
    a section or limit sent must agree with it)."""

    eval_set = StrictCharField(max_length=200)
    section = StrictCharField(max_length=64, required=False, allow_blank=True, allow_null=True)
    limit = StrictIntegerField(min_value=1, required=False, allow_null=True)
    generation = serializers.DictField(required=False, help_text="the generation settings the client used")


def _run_fields(data, errors: dict, user=None):
    values = collect(ImportedRunSerializer, data, errors, prefix="run")
    if not isinstance(data, dict):
        return None, None, None
    dataset = _dataset(data.get("dataset_id"), user)
    if data.get("dataset_content_hash") != dataset.content_hash:
        errors["run.dataset_content_hash"] = [f"{dataset.pk} has content hash {dataset.content_hash}; the run says "
                                              f"{data.get('dataset_content_hash')!r}: it trained on other data."]
    if values is None:
        return dataset, None, None
    if values["steps_completed"] > values["config"].max_steps:
        errors["run.steps_completed"] = ["Must be an integer from 0 to the config's max_steps."]
    return dataset, values["config"], values


def _dataset(dataset_id, user) -> DatasetVersion:
    """The dataset version the run trained on, if the importer may see it: an unknown one and one out of
    reach are the same 404 (a run may not claim data its importer cannot read)."""
    versions = datasets_visible_to(user) if user is not None else DatasetVersion.objects.all()
    dataset = versions.defer("manifest").filter(pk=dataset_id).first() if isinstance(dataset_id, str) else None
    if dataset is None:
        raise NotFound(f"No dataset version {dataset_id!r}.", extra={"field": "run.dataset_id"})
    return dataset


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value and abs(value) != float(
        "inf")


def _metrics(rows: list[dict], errors: dict) -> list[RunMetric]:
    metrics, seen = [], set()
    for row in rows:
        line, step = row["_line"], row.get("step")
        if type(step) is not int or step < 1 or step in seen:
            errors[f"metrics[{line}].step"] = ["Must be a new integer step >= 1."]
            continue
        bad = [key for key in METRIC_FIELDS if row.get(key) is not None and not _number(row[key])]
        if bad:
            errors[f"metrics[{line}]"] = [f"Not numbers: {', '.join(bad)}."]
            continue
        seen.add(step)
        metrics.append(RunMetric(step=step, at=timezone.now(), **{key: row.get(key) for key in METRIC_FIELDS}))
    return metrics


def _evaluation(data, parts, errors):
    if data is None:
        if "predictions" in parts:
            errors["evaluation"] = ["Predictions need the evaluation part (which eval set they answer)."]
        return None, {}
    values = collect(ImportedEvaluationSerializer, data, errors, prefix="evaluation")
    if values is None:
        return None, {}
    eval_set = EvalSet.objects.filter(pk=values["eval_set"]).first()
    if eval_set is None:
        errors["evaluation.eval_set"] = [f"No eval set {values['eval_set']!r}."]
        return None, {}
    if "predictions" not in parts:
        errors["predictions"] = ["Send the predictions (NDJSON) of the evaluation."]
    return eval_set, {item.item_id: item for item in eval_set.items.all()}


def _predictions(rows: list[dict], items: dict, errors: dict) -> list[tuple]:
    predictions, seen = [], set()
    for row in rows:
        line, item_id = row["_line"], row.get("id")
        if item_id not in items:
            errors[f"predictions[{line}].id"] = [f"No item {item_id!r} in the eval set."]
        elif item_id in seen:
            errors[f"predictions[{line}].id"] = [f"Item {item_id!r} is answered twice."]
        elif not isinstance(row.get("output"), str):
            errors[f"predictions[{line}].output"] = ["Must be the model's raw output text."]
        else:
            seen.add(item_id)
            predictions.append((items[item_id], row))
    if not predictions and rows:
        errors.setdefault("predictions", ["No usable prediction."])
    elif not rows:
        errors.setdefault("predictions", ["Send at least one prediction."])
    return predictions


def _slice(eval_set, data: dict, predictions: list[tuple], errors: dict) -> dict | None:
    """{"section", "limit"} of the items the predictions answer, as a server evaluation of that slice
    would store it; None (and an error naming the gap) when they answer no slice."""
    covered = {item.pk for item, _ in predictions}
    ordered = list(eval_set.items.order_by("position").values_list("pk", "item_id", "section"))
    candidates = [("", ordered)] + [(section, [row for row in ordered if row[2] == section])
                                    for section in sorted({row[2] for row in ordered} - {""})]
    for section, items in candidates:
        if {pk for pk, _, _ in items[:len(covered)]} == covered:
            derived = {"section": section, "limit": len(covered) if len(covered) < len(items) else None}
            _agrees(data, derived, len(items), errors)
            return derived
    missing = [item_id for pk, item_id, _ in ordered[:len(covered)] if pk not in covered]
    errors["predictions"] = [f"The {len(covered)} answered items are no slice of {eval_set.pk} (all items, the first "
                             f"N, or the first N of one section), so no server evaluation could be compared with "
                             f"them; the first {len(covered)} items also hold {', '.join(missing[:5])}"
                             + (" …" if len(missing) > 5 else "") + "."]
    return None


def _agrees(data: dict, derived: dict, slice_size: int, errors: dict) -> None:
    """A `section` or `limit` the client states must be what its predictions cover."""
    section, limit = data.get("section"), data.get("limit")
    if section not in (None, "") and section != derived["section"]:
        errors["evaluation.section"] = [f"The predictions answer section {derived['section'] or '(all)'!r}, "
                                        f"not {section!r}."]
    if limit is None:
        return
    stated = (limit if limit < slice_size else None) if type(limit) is int and limit >= 1 else "invalid"
    if stated != derived["limit"]:
        covered = "all" if derived["limit"] is None else f"the first {derived['limit']}"
        errors["evaluation.limit"] = [f"The predictions answer {covered} of the slice's {slice_size} items, "
                                      f"not a limit of {limit!r}."]


def _archive_members(upload, errors: dict) -> list[tarfile.TarInfo]:
    try:
        upload.seek(0)
        with tarfile.open(fileobj=upload, mode="r:*") as archive:
            members = archive.getmembers()
    except (tarfile.TarError, OSError, EOFError):
        errors["archive"] = ["Must be a tar or tar.gz archive of the run's output folder."]
        return []
    for member in members:
        path = PurePosixPath(member.name)
        if path.is_absolute() or ".." in path.parts or not (member.isfile() or member.isdir()):
            errors["archive"] = [f"{member.name!r} would land outside the run folder (or is not a plain file)."]
            return []
    if sum(m.size for m in members) > settings.IMPORT_MAX_BYTES:
        errors["archive"] = [f"Unpacked, the archive exceeds {settings.IMPORT_MAX_BYTES} bytes."]
    return members


# --- storing -------------------------------------------------------------------------------------

def _store(user, dataset, config, run_values, metrics, eval_set, evaluation_data, predictions, archive, members):
    now = timezone.now()
    staging = Path(settings.RUNS_DIR) / f".import-{uuid.uuid4().hex}"
    run = None
    try:
        if archive is not None:
            _extract(archive, members, staging)
            _check_archive_run_config(staging)
        with transaction.atomic():
            run = training_run_create(
                dataset=dataset, config=config, user=user, auto_evaluate=False, imported=True, status="completed",
                attempt=1, worker="import", steps_completed=run_values["steps_completed"],
                final_loss=run_values.get("final_loss"), tokens_per_s=run_values.get("tokens_per_s"),
                code_version=run_values["code_version"], device=run_values["device"], timings=run_values["timings"],
                started_at=now, finished_at=now)
            for metric in metrics:
                metric.run = run
            RunMetric.objects.bulk_create(metrics, batch_size=1000)
            if archive is not None:
                target = RunPaths.of(run).out
                target.parent.mkdir(parents=True, exist_ok=True)
                staging.rename(target)
                record_artifacts(run, RunPaths.of(run))
            evaluation = _store_evaluation(run, eval_set, evaluation_data, predictions, user) if eval_set else None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if run is not None:  # its rows are rolled back: its folder and stored copies must go too
            with contextlib.suppress(DomainError):  # a store that is away keeps only unreferenced copies
                discard_outputs(run)
        raise
    return run, evaluation


def _check_archive_run_config(folder: Path) -> None:
    """The archive's run_config.json decides which base weights its evaluation loads (`model_dir`, joined to
    the run folder): it must stay inside the archive, never point at a path on this server or the client's."""
    path = folder / "run_config.json"
    try:
        run_config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (ValueError, UnicodeDecodeError):
        raise Invalid({"archive": ["Its run_config.json is not JSON."]}) from None
    model_dir = run_config.get("model_dir") if isinstance(run_config, dict) else None
    if model_dir in (None, ""):
        return
    problem = folder_problem(folder, model_dir, what="the archive")
    if problem:
        raise Invalid({"archive": [f"Its run_config.json names model_dir {model_dir!r}: {problem} Put the base "
                                   "weights in the archive (as the run folder's base model), or send the run "
                                   "without them."]})


def _extract(archive, members, staging: Path) -> None:
    archive.seek(0)
    staging.mkdir(parents=True)
    with tarfile.open(fileobj=archive, mode="r:*") as tar:
        tar.extractall(staging, members=members, filter="data")
    # An archive of one top folder (`out/…`) is that folder.
    children = list(staging.iterdir())
    if len(children) == 1 and children[0].is_dir() and not (staging / "run_config.json").exists():
        inner = children[0]
        for child in inner.iterdir():
            child.rename(staging / child.name)
        inner.rmdir()


def _store_evaluation(run, eval_set, data, predictions, user) -> Evaluation:
    """The client's outputs judged here, stored `imported` with the slice derived from its items (the
    checkpoint step is the archive's latest, if it sent one: which weights it says it evaluated)."""
    judge_set = judge_registry.judge_set(None)
    now = timezone.now()
    steps = run_checkpoint_steps(run)
    evaluation = Evaluation.objects.create(
        run=run, eval_set=eval_set, eval_set_hash=eval_set.content_hash, section=data["section"],
        limit=data["limit"], judges=judge_set, source=EvaluationSource.IMPORTED,
        checkpoint_step=steps[-1] if steps else None,
        judge_key=judge_registry.judge_key(judge_set), generation=data.get("generation") or {},
        item_count=len(predictions), progress_done=len(predictions), progress_total=len(predictions),
        status="completed", attempt=1, worker="import", started_at=now, finished_at=now,
        created_by=author(user))
    Prediction.objects.bulk_create([
        Prediction.judged(evaluation, item, row["output"], judge({"expected_answer": item.expected_answer},
                                                                 row["output"]),
                          tokens=row.get("tokens") if type(row.get("tokens")) is int else None,
                          stopped=row.get("stopped") if isinstance(row.get("stopped"), bool) else None,
                          latency_s=row.get("latency_s") if _number(row.get("latency_s")) else None)
        for item, row in predictions], batch_size=1000)
    Evaluation.objects.filter(pk=evaluation.pk).update(**evaluation_scores(evaluation))
    evaluation.refresh_from_db()
    return evaluation
