"""Evaluation writes: loading eval sets, requesting evaluations (by hand or when a run completes).
Regression baselines and checks are in apps.evaluations.regression.

A request is validated completely before anything is stored (the run has completed, the eval set,
section, limit, judges, checkpoint and generation settings exist and fit), then the evaluation is
stored `queued` and its task is sent after the commit.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction

from apps.core.authentication import author
from apps.core.errors import Conflict, Invalid
from apps.core.jobs import job_cancel, job_dispatch
from apps.core.models import ACTIVE_JOB_STATUSES, JobStatus
from apps.core.notify import notify
from apps.core.validation import validated
from apps.evaluations import judges as judge_registry
from apps.evaluations.models import EvalItem, EvalSet, Evaluation, EvaluationSource
from apps.evaluations.requests import EvaluateRequestSerializer
from apps.evaluations.signals import evaluation_finished
from apps.runs.models import TrainingRun
from apps.runs.selectors import run_checkpoint_steps
from training.run_files import file_sha256

logger = logging.getLogger(__name__)



# --- eval sets -----------------------------------------------------------------------------------

def eval_set_load(*, folder: Path) -> tuple[EvalSet, str]:
    """Store the eval set in `folder` (items.jsonl + manifest.json); returns (set, created|unchanged).

    Eval sets are immutable: the file must match its manifest's hash, and a stored set of the same id
    with another hash is a Conflict (scores on the old items would silently stop being comparable)."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    content_hash = file_sha256(folder / "items.jsonl")
    if content_hash != manifest.get("content_hash"):
        raise Conflict(f"{folder / 'items.jsonl'} does not match its manifest's content hash.",
                       code="eval_set_corrupt")
    set_id = manifest.get("dataset_id") or folder.name
    stored = EvalSet.objects.filter(pk=set_id).first()
    if stored is not None:
        if stored.content_hash != content_hash:
            raise Conflict(f"Eval set {set_id!r} is stored with other items; publish a new version instead.",
                           code="eval_set_exists")
        return stored, "unchanged"
    lines = (folder / "items.jsonl").read_text(encoding="utf-8").splitlines()
    items = [json.loads(line) for line in lines if line.strip()]
    name, _, version = set_id.rpartition("-")
    with transaction.atomic():
        eval_set = EvalSet.objects.create(id=set_id, name=name or set_id, version=version, content_hash=content_hash,
                                          item_count=len(items), manifest=manifest)
        EvalItem.objects.bulk_create([
            EvalItem(eval_set=eval_set, item_id=item["id"], position=position, prompt=item["prompt"],
                     expected_answer=str(item["expected_answer"]), category=item.get("category") or "",
                     difficulty=item.get("difficulty") or "", section=item.get("section") or "")
            for position, item in enumerate(items)], batch_size=1000)
    return eval_set, "created"


# --- evaluations ---------------------------------------------------------------------------------

def evaluation_request(*, run: TrainingRun, data, user=None, auto: bool = False) -> Evaluation:
    """Validate an evaluation request for a completed run and queue it (or return the identical one
    already queued or running)."""
    return evaluation_request_or_existing(run=run, data=data, user=user, auto=auto)[0]


def evaluation_request_or_existing(*, run: TrainingRun, data, user=None, auto: bool = False
                                   ) -> tuple[Evaluation, bool]:
    """(evaluation, created): a new queued evaluation, or the identical one (same run, checkpoint step,
    eval set, slice, judges and generation settings) that is already queued, running or being retried.

    Concurrent identical requests race on a partial unique index over `request_key`: one insert wins,
    the others wait for its commit, fail, and return the winner."""
    fields = _evaluation_fields(run, data)
    for _ in range(3):
        existing = Evaluation.objects.filter(request_key=fields["request_key"],
                                             status__in=ACTIVE_JOB_STATUSES).first()
        if existing is not None:
            if auto and not existing.auto:  # a sweep trial waits for its run's auto evaluation
                Evaluation.objects.filter(pk=existing.pk).update(auto=True)
                existing.auto = True
            return existing, False
        try:
            with transaction.atomic():
                evaluation = Evaluation.objects.create(
                    **fields, auto=auto, created_by=author(user))
                job_dispatch(Evaluation, evaluation.pk)
            return evaluation, True
        except IntegrityError:
            continue  # an identical request committed first: return it on the next pass
    raise Conflict("An identical evaluation was requested at the same moment; retry.", code="request_race")


def _evaluation_fields(run: TrainingRun, data) -> dict:
    """Everything an evaluation row is created with, from a validated request; the checkpoint step is
    resolved (default: the run's latest) and a limit covering the whole slice is no limit, so equal
    requests get equal keys."""
    values = validated(EvaluateRequestSerializer, data)
    errors: dict = {}
    eval_set = _eval_set(values["eval_set"], errors)
    section = _section(eval_set, values.get("section"), errors)
    limit = values.get("limit")
    if limit is not None and eval_set is not None and limit > eval_set.item_count:
        errors["limit"] = [f"Must be an integer from 1 to {eval_set.item_count}."]
    max_new_tokens, checkpoint_step = values.get("max_new_tokens"), values.get("checkpoint_step")
    batch_size = values.get("batch_size") or 16
    try:
        judges = judge_registry.judge_set(values.get("judges"))
    except Invalid as exc:
        errors.update(exc.detail)
    if errors:
        raise Invalid(errors)
    checkpoint_step = _check_run(run, checkpoint_step)
    items = eval_set.items.filter(section=section) if section else eval_set.items.all()
    available = items.count()
    if limit is not None and limit >= available:
        limit = None
    count = limit or available
    fields = {"run": run, "checkpoint_step": checkpoint_step, "eval_set": eval_set,
              "eval_set_hash": eval_set.content_hash, "section": section or "", "limit": limit, "judges": judges,
              "judge_key": judge_registry.judge_key(judges), "item_count": count, "progress_total": count,
              "generation": {"max_new_tokens": max_new_tokens, "temperature": 0.0, "seed": 0,
                             "batch_size": batch_size},
              "source": EvaluationSource.SERVER}
    return {**fields, "request_key": _request_key(fields)}


def _request_key(fields: dict) -> str:
    identity = {"run": str(fields["run"].pk), "checkpoint_step": fields["checkpoint_step"],
                "eval_set": fields["eval_set"].pk, "eval_set_hash": fields["eval_set_hash"],
                "section": fields["section"], "limit": fields["limit"], "judge_key": fields["judge_key"],
                "generation": fields["generation"]}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode("utf-8")).hexdigest()


def _eval_set(value: str, errors: dict) -> EvalSet | None:
    eval_set = EvalSet.objects.filter(pk=value).first()
    if eval_set is None:
        known = ", ".join(EvalSet.objects.values_list("id", flat=True)) or "none (run manage.py seed_datasets)"
        errors["eval_set"] = [f"No eval set {value!r}; loaded: {known}."]
    return eval_set


def _section(eval_set: EvalSet | None, value, errors: dict) -> str | None:
    if value in (None, "") or eval_set is None:
        return None
    sections = sorted(set(eval_set.items.values_list("section", flat=True)))
    if value not in sections:
        errors["section"] = [f"{eval_set.pk} has no section {value!r}; it has {', '.join(sections)}."]
    return value


def _check_run(run: TrainingRun, checkpoint_step: int | None) -> int:
    """The checkpoint step to evaluate: the one asked for, or the run's latest."""
    if run.status != JobStatus.COMPLETED:
        raise Conflict(f"Run {run.pk} is {run.status}; only a completed run can be evaluated.",
                       code="run_not_completed", extra={"status": run.status})
    steps = run_checkpoint_steps(run)
    if not steps:
        raise Conflict(f"Run {run.pk} kept no checkpoint to evaluate.", code="no_checkpoint")
    if checkpoint_step is None:
        return steps[-1]
    if checkpoint_step not in steps:
        raise Invalid({"checkpoint_step": [f"Run {run.pk} kept no checkpoint at step {checkpoint_step}; "
                                           f"it has {steps}."]})
    return checkpoint_step


def enqueue_evaluation(evaluation_id) -> None:
    from apps.evaluations.tasks import evaluation_task

    evaluation_task.delay(str(evaluation_id))


def evaluation_announce_finished(evaluation_id, status: str) -> None:
    """An evaluation's job ended: wake its followers and tell the apps above (registry metrics, sweeps)."""
    from apps.evaluations.launcher import evaluation_topic

    notify(evaluation_topic(evaluation_id))
    evaluation_finished.send(sender=Evaluation, evaluation_id=evaluation_id, status=status)


def evaluation_cancel(*, evaluation: Evaluation) -> Evaluation:
    """Stop an evaluation: a queued one is cancelled at once; a running one stops after its current batch
    (the cancel file, then SIGTERM, then SIGKILL) and keeps the predictions it stored."""
    if job_cancel(Evaluation, evaluation.pk) is None:
        evaluation.refresh_from_db()
        raise Conflict(f"The evaluation is already {evaluation.status}; only queued or running evaluations can be "
                       "cancelled.", code="evaluation_finished", extra={"status": evaluation.status})
    evaluation.refresh_from_db()
    return evaluation


def evaluation_queue_for_completed_run(*, run_id, status: str) -> Evaluation | None:
    """The runs app's `training_run_finished` signal: evaluate a completed run's final checkpoint on its
    auto_eval_set (or AUTO_EVAL_SET) unless the run opted out; a missing eval set is logged, not an error
    (a sweep settles its trial from the rows and reports why)."""
    if status != JobStatus.COMPLETED:
        return None
    run = TrainingRun.objects.filter(pk=run_id, auto_evaluate=True).first()
    if run is None or not (run.auto_eval_set or settings.AUTO_EVAL_SET):
        return None
    try:
        return evaluation_auto_request(run=run)
    except (Invalid, Conflict) as exc:
        logger.warning("auto-evaluation of run %s skipped: %s", run_id, exc.message)
        return None


def evaluation_auto_request(*, run: TrainingRun) -> Evaluation:
    """The automatic evaluation of a completed run (queued once: a second call returns the first)."""
    existing = run.evaluations.filter(auto=True).first()
    if existing is not None:
        return existing
    request = {"eval_set": run.auto_eval_set or settings.AUTO_EVAL_SET}
    limit = run.auto_eval_limit or settings.AUTO_EVAL_LIMIT
    if limit:
        request["limit"] = limit
    return evaluation_request(run=run, data=request, user=run.created_by, auto=True)
