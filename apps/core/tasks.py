from celery import shared_task

from apps.core.jobs import jobs_reap_all


@shared_task(name="apps.core.tasks.jobs_reap_task")
def jobs_reap_task() -> dict:
    """Celery beat runs this every JOB_REAP_INTERVAL_SECONDS (see settings.CELERY_BEAT_SCHEDULE)."""
    return jobs_reap_all()
