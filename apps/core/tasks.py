from celery import shared_task

from apps.core.jobs import DATABASE_UNREACHABLE, jobs_reap_all


def job_task(name: str):
    """A Celery task that runs one job row. If the database cannot be reached to claim it, the message is
    retried with backoff instead of being dropped (the row stays queued, and the reaper is the last resort)."""
    return shared_task(name=name, autoretry_for=DATABASE_UNREACHABLE, retry_backoff=2, retry_backoff_max=60,
                       retry_jitter=True, max_retries=30)


@shared_task(name="apps.core.tasks.jobs_reap_task")
def jobs_reap_task() -> dict:
    """Celery beat runs this every JOB_REAP_INTERVAL_SECONDS (see settings.CELERY_BEAT_SCHEDULE)."""
    return jobs_reap_all()
