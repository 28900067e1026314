"""The one job mechanism: claim, heartbeat, finish once, reap (SPEC §3, HOUSE_STYLE "background work").

Every background job is a row of a model inheriting `apps.core.models.Job`. A service stores the row
`queued` and calls `job_dispatch(model, id)`, which sends its task after the commit (a broker outage
leaves the row for the reaper instead of failing the request). The Celery task calls
`job_run(model, id, work)`, which

1. claims the row with a conditional update (`queued → running`, `attempt + 1`); a second delivery
   of the same message finds nothing to claim and returns without doing the work;
2. runs `work(row, context)` under a `JobContext` whose thread beats the heartbeat, writes progress,
   reads the cancel flag and fences the worker off when it cannot renew its claim (claims.py, context.py);
3. finishes in exactly one final state, fenced by the claimed attempt, and only then announces the end
   to the kind's listeners (kinds.py).

The reaper (reaper.py) retries or fails jobs whose worker vanished, and re-sends tasks that were never
sent or were lost by the broker. A child process a job follows (a trainer, an evaluator) is driven by
the one follow loop in `apps.core.child`.
"""

from apps.core.jobs.claims import (
    Claim,
    JobCancelled,
    JobInterrupted,
    JobLost,
    job_beat,
    job_claim,
    job_finish,
    job_release,
    worker_label,
)
from apps.core.jobs.context import DATABASE_UNREACHABLE, JobContext, job_run, reset_connections_after_error
from apps.core.jobs.kinds import (
    JobKind,
    announce_finished,
    job_cancel,
    job_dispatch,
    job_kinds,
    kind_of,
    register_job_kind,
    send,
)
from apps.core.jobs.reaper import Backlog, job_reap, jobs_reap_all, register_backlog

__all__ = [
    "DATABASE_UNREACHABLE", "Backlog", "Claim", "JobCancelled", "JobContext", "JobInterrupted", "JobKind", "JobLost",
    "announce_finished", "job_beat", "job_cancel", "job_claim", "job_dispatch", "job_finish", "job_kinds",
    "job_reap", "job_release", "job_run", "jobs_reap_all", "kind_of", "register_backlog", "register_job_kind",
    "reset_connections_after_error", "send", "worker_label",
]
