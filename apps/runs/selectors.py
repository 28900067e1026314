"""Training-run reads: visibility, list filters, log lines, metrics (downsampled for charts), artifacts,
and a GRPO run's sampled completions."""

from __future__ import annotations

import json

from django.db.models import QuerySet

from apps.core.errors import NotFound
from apps.core.lookups import get_by_uuid
from apps.core.store import artifact_store
from apps.core.visibility import visible_to
from apps.runs.models import METRIC_FIELDS, RunArtifact, RunLogLine, RunMetric, TrainingRun
from apps.runs.storage import NAMESPACE, artifact_key, artifact_open, checkpoint_step_of
from training.grpo.config import SAMPLES_FILE

VIEW_ALL_PERMISSION = "runs.view_trainingrun"
METRIC_COLUMNS = ("step", *METRIC_FIELDS)


def runs_visible_to(user) -> QuerySet[TrainingRun]:
    """Trainers, viewers and superusers see every run; anyone else only runs they started (contributors
    cannot start runs, so they see none)."""
    return visible_to(user, TrainingRun.objects.all(), view_all_permission=VIEW_ALL_PERMISSION)


def run_get(*, user, run_id) -> TrainingRun:
    return get_by_uuid(runs_visible_to(user).select_related("created_by"), run_id, what="training run")


def run_list(*, user, filters: dict) -> QuerySet[TrainingRun]:
    runs = runs_visible_to(user).select_related("created_by")
    for field in ("status", "backend", "model"):
        if filters.get(field):
            runs = runs.filter(**{field: filters[field]})
    if filters.get("dataset"):
        runs = runs.filter(dataset_version_id=filters["dataset"])
    if filters.get("created_after"):
        runs = runs.filter(queued_at__gte=filters["created_after"])
    if filters.get("created_before"):
        runs = runs.filter(queued_at__lt=filters["created_before"])
    return runs.order_by("-queued_at", "-id")


def run_status(run_id) -> dict | None:
    return (TrainingRun.objects.filter(pk=run_id)
            .values("status", "attempt", "max_attempts", "steps_completed", "max_steps", "heartbeat_at",
                    "cancel_requested", "error_code", "error", "final_loss").first())


def log_lines_after(run_id, seq: int, limit: int = 500) -> list[dict]:
    return list(RunLogLine.objects.filter(run_id=run_id, seq__gt=seq).order_by("seq")
                .values("seq", "stream", "text", "at")[:limit])


def metrics_after(run_id, step: int, limit: int = 2000) -> list[dict]:
    """Metric rows after `step`, each flat: the columns and the row's other numbers (GRPO's rewards, …)."""
    rows = (RunMetric.objects.filter(run_id=run_id, step__gt=step).order_by("step")
            .values(*METRIC_COLUMNS, "values")[:limit])
    return [{**row.pop("values"), **row} for row in rows]


def run_metrics(run_id, *, max_points: int | None = None) -> dict:
    """Every metric row as columns ({"step": [...], "loss": [...], "reward_mean": [...], ...}: the columns,
    then every other name any row reports, None where a row lacks it); with `max_points`, an even sample
    that always keeps the first and last step, for charts of long runs."""
    rows = list(RunMetric.objects.filter(run_id=run_id).order_by("step").values_list(*METRIC_COLUMNS, "values"))
    total = len(rows)
    if max_points and total > max_points:
        stride = (total - 1) / (max_points - 1)
        rows = [rows[round(i * stride)] for i in range(max_points)]
    columns = {name: [row[index] for row in rows] for index, name in enumerate(METRIC_COLUMNS)}
    others = sorted({name for row in rows for name in row[-1]} - set(columns))
    columns |= {name: [row[-1].get(name) for row in rows] for name in others}
    return {"points": len(rows), "total_points": total, "downsampled": len(rows) < total, **columns}


def run_artifacts(run: TrainingRun) -> QuerySet[RunArtifact]:
    return RunArtifact.objects.filter(run=run).order_by("name")


def run_checkpoint_steps(run: TrainingRun) -> list[int]:
    """The steps the run kept a checkpoint of (`checkpoints/<step>/…` artifacts), ascending. An imported
    archive may hold any folder name there; only ASCII step numbers count."""
    names = RunArtifact.objects.filter(run=run, kind="checkpoint").values_list("name", flat=True)
    return sorted({step for step in map(checkpoint_step_of, names) if step is not None})


def run_artifact(run: TrainingRun, name: str) -> RunArtifact:
    artifact = RunArtifact.objects.filter(run=run, name=name).first()
    if artifact is None:
        raise NotFound(f"Run {run.pk} has no artifact {name!r}.")
    return artifact


def run_completions(run: TrainingRun, filters: dict) -> list[dict]:
    """A GRPO run's sampled completions (its samples.jsonl: every `sample_every` steps, `sample_count` of
    them with each judge's verdict), newest step first, filtered by `step`, `min_reward`, `max_reward` and
    `failed` (a judge that scored 0). A running run's live file is read where the store is this host's
    folder; on a shared store, what the last upload holds."""
    rows = []
    for line in _samples_lines(run):
        for index, sample in enumerate(line.get("samples") or []):
            rows.append({"step": line.get("step"), "index": index, **sample})
    rows = [row for row in rows if _completion_matches(row, filters)]
    return sorted(rows, key=lambda row: (-(row["step"] or 0), row["index"]))


def _samples_lines(run: TrainingRun) -> list[dict]:
    artifact = RunArtifact.objects.filter(run=run, name=SAMPLES_FILE).first()
    store = artifact_store()
    if artifact is not None:
        with artifact_open(run, artifact) as handle:
            text = handle.read().decode("utf-8")
    elif not store.shared and (path := store.local_path(NAMESPACE, artifact_key(run, SAMPLES_FILE))).exists():
        text = path.read_text(encoding="utf-8")
    else:
        return []
    lines = []
    for raw in text.splitlines():
        try:
            value = json.loads(raw)
        except ValueError:  # a line still being written
            continue
        if isinstance(value, dict):
            lines.append(value)
    return lines


def _completion_matches(row: dict, filters: dict) -> bool:
    reward = row.get("reward")
    if filters.get("step") is not None and row["step"] != filters["step"]:
        return False
    if filters.get("min_reward") is not None and not (reward is not None and reward >= filters["min_reward"]):
        return False
    if filters.get("max_reward") is not None and not (reward is not None and reward <= filters["max_reward"]):
        return False
    return not (filters.get("failed") and (row.get("judges") or {}).get(filters["failed"]) != 0.0)
