from celery import shared_task

from apps.runs.launcher import training_run_launch


@shared_task(name="apps.runs.tasks.training_run_task")
def training_run_task(run_id: str) -> str | None:
    return training_run_launch(run_id=run_id)


@shared_task(name="apps.runs.tasks.sweeps_advance_task")
def sweeps_advance_task() -> int:
    """Celery beat: advance every running sweep (see settings.CELERY_BEAT_SCHEDULE)."""
    from apps.runs.sweeps import sweeps_advance_all

    return sweeps_advance_all()
