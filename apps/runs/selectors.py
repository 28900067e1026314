"""Training-run reads: visibility, list filters, log lines, metrics (downsampled for charts), artifacts."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.core.errors import NotFound
from apps.core.lookups import get_by_uuid
from apps.core.visibility import visible_to
from apps.runs.models import METRIC_FIELDS, RunArtifact, RunLogLine, RunMetric, TrainingRun
from apps.runs.storage import checkpoint_step_of

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
    return list(RunMetric.objects.filter(run_id=run_id, step__gt=step).order_by("step")
                .values(*METRIC_COLUMNS)[:limit])


def run_metrics(run_id, *, max_points: int | None = None) -> dict:
    """Every metric row as columns ({"step": [...], "loss": [...], ...}); with `max_points`, an even
    sample that always keeps the first and last step, for charts of long runs."""
    rows = list(RunMetric.objects.filter(run_id=run_id).order_by("step").values_list(*METRIC_COLUMNS))
    total = len(rows)
    if max_points and total > max_points:
        stride = (total - 1) / (max_points - 1)
        rows = [rows[round(i * stride)] for i in range(max_points)]
    columns = {name: [row[index] for row in rows] for index, name in enumerate(METRIC_COLUMNS)}
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
