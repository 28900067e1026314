from celery import shared_task

from apps.sweeps.services import sweeps_reconcile_all


@shared_task(name="apps.sweeps.tasks.sweeps_reconcile_task")
def sweeps_reconcile_task() -> int:
    """Celery beat (settings.CELERY_BEAT_SCHEDULE): settle trials whose end nobody heard, advance sweeps."""
    return sweeps_reconcile_all()
