"""Builders the registry tests share."""

import shutil

from django.utils import timezone

from apps.runs.models import TrainingRun
from apps.runs.storage import RunPaths, record_artifacts


def copy_of_run(run: TrainingRun, weights_dir, runs_dir) -> TrainingRun:
    """Another completed run row with the same weights in its own folder."""
    copy = TrainingRun.objects.get(pk=run.pk)
    copy.pk = copy.id = None
    copy.save()
    TrainingRun.objects.filter(pk=copy.pk).update(finished_at=timezone.now())
    copy.refresh_from_db()
    shutil.copytree(weights_dir, runs_dir / str(copy.pk) / "out")
    record_artifacts(copy, RunPaths.of(copy))
    return copy
