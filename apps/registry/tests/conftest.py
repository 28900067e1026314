"""Registry fixtures: the evaluations app's completed run (a real tiny checkpoint) and eval set."""

import shutil

import pytest
from django.utils import timezone

from apps.evaluations.tests.conftest import (  # noqa: F401 - shared fixtures
    completed_run,
    data_dirs,
    dataset,
    small_set,
    trained_out,
)
from apps.runs.models import TrainingRun
from apps.runs.storage import RunPaths, record_artifacts


@pytest.fixture
def another_run(completed_run, trained_out, settings):  # noqa: F811
    """A second completed run (same weights, another row): the next promotion."""
    run = TrainingRun.objects.get(pk=completed_run.pk)
    run.pk = None
    run.id = None
    run.save()
    run = TrainingRun.objects.exclude(pk=completed_run.pk).get()
    TrainingRun.objects.filter(pk=run.pk).update(finished_at=timezone.now())
    shutil.copytree(trained_out, settings.RUNS_DIR / str(run.pk) / "out")
    record_artifacts(run, RunPaths.of(run))
    return run
