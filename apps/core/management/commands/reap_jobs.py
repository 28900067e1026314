"""`manage.py reap_jobs`: one reaper pass over every background job kind, for cron users without beat."""

import json

from django.core.management.base import BaseCommand, CommandError

from apps.core.jobs import jobs_reap_all


class Command(BaseCommand):
    help = "Mark jobs with a stale heartbeat lost, retry or fail them, and re-enqueue long-queued jobs."

    def add_arguments(self, parser):
        parser.add_argument("--stale-seconds", type=float, help="heartbeat age that counts as lost "
                                                                "(default: JOB_STALE_SECONDS)")
        parser.add_argument("--kind", action="append", help="only this job kind (repeatable), e.g. training_run")
        parser.add_argument("--requeue-seconds", type=float, help="queued age after which the task is sent again "
                                                                  "(default: JOB_REQUEUE_SECONDS)")

    def handle(self, *args, **options):
        try:
            report = jobs_reap_all(kinds=options["kind"], stale_seconds=options["stale_seconds"],
                                   requeue_seconds=options["requeue_seconds"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(report, sort_keys=True))
