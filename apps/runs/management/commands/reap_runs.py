"""`manage.py reap_runs`: the reaper for training runs only (cron users without Celery beat)."""

from apps.core.management.commands.reap_jobs import Command as ReapJobs


class Command(ReapJobs):
    help = "Mark runs with a stale heartbeat lost, retry them from their checkpoint or fail them."

    def handle(self, *args, **options):
        return super().handle(*args, **{**options, "kind": ["training_run"]})
