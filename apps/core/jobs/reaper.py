"""The reaper (Celery beat and `manage.py reap_jobs`): nothing background stays stuck or unsent.

One pass over each kind:
- a running row whose heartbeat is older than `JOB_STALE_SECONDS` is marked `lost`, then queued again
  (its task re-sent) while attempts remain, or failed with the reason, or cancelled if that was asked;
  every such end is announced like any other;
- a queued row whose task was never sent (the broker was down after its commit) is sent again after
  `JOB_DISPATCH_RETRY_SECONDS`; one sent longer than `JOB_REQUEUE_SECONDS` ago is sent again too, in case
  the broker lost the message (a duplicate is harmless: only one delivery can claim).
Then each registered backlog (recorded side effects such as trace scores) re-sends its unfinished work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.jobs.kinds import JobKind, announce_finished, job_kinds, send
from apps.core.models import JobStatus


@dataclass(frozen=True)
class Backlog:
    """Side-effect work an app records on its rows (say, traces not yet scored): `resend()` sends the
    tasks for what is still pending and returns how many items it sent."""

    name: str
    resend: Callable[[], int]


_BACKLOGS: dict[str, Backlog] = {}


def register_backlog(backlog: Backlog) -> None:
    _BACKLOGS[backlog.name] = backlog


def job_reap(kind: JobKind, *, stale_seconds: float | None = None, requeue_seconds: float | None = None,
             dispatch_retry_seconds: float | None = None, now=None) -> dict:
    """One pass of the reaper over one kind; returns counts of what it did."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=stale_seconds if stale_seconds is not None
                            else kind.stale_seconds or settings.JOB_STALE_SECONDS)
    report = {"lost": 0, "requeued": 0, "failed": 0, "cancelled": 0, "reenqueued": 0}
    model = kind.model
    for row in model.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=stale).values("pk", "attempt"):
        report["lost"] += model.objects.filter(pk=row["pk"], status=JobStatus.RUNNING, attempt=row["attempt"],
                                               heartbeat_at__lt=stale).update(status=JobStatus.LOST)
    # Every lost row, including any a reaper that died half-way left behind.
    for row in model.objects.filter(status=JobStatus.LOST).values("pk", "attempt", "max_attempts",
                                                                  "cancel_requested", "heartbeat_at"):
        report[_resolve_lost(kind, row, now)] += 1
    report["reenqueued"] = _resend_unsent(kind, now, requeue_seconds, dispatch_retry_seconds)
    return report


def _resolve_lost(kind: JobKind, row: dict, now) -> str:
    rows = kind.model.objects.filter(pk=row["pk"], status=JobStatus.LOST, attempt=row["attempt"])
    seen = row["heartbeat_at"].isoformat(timespec="seconds") if row["heartbeat_at"] else "never"
    reason = f"attempt {row['attempt']} lost: no heartbeat since {seen}"
    if row["cancel_requested"]:
        if rows.update(status=JobStatus.CANCELLED, finished_at=now, error_code="cancelled", error=reason):
            announce_finished(kind.model, row["pk"], JobStatus.CANCELLED)
        return "cancelled"
    if row["attempt"] < row["max_attempts"]:
        if rows.update(status=JobStatus.QUEUED, queued_at=now, dispatched_at=None, error_code="lost", error=reason):
            _send_after_commit(kind, row["pk"])
        return "requeued"
    if rows.update(status=JobStatus.FAILED, finished_at=now, error_code="lost",
                   error=f"{reason}; gave up after {row['attempt']} of {row['max_attempts']} attempts"):
        announce_finished(kind.model, row["pk"], JobStatus.FAILED)
    return "failed"


def _resend_unsent(kind: JobKind, now, requeue_seconds, dispatch_retry_seconds) -> int:
    never_sent = now - timedelta(seconds=dispatch_retry_seconds if dispatch_retry_seconds is not None
                                 else settings.JOB_DISPATCH_RETRY_SECONDS)
    long_ago = now - timedelta(seconds=requeue_seconds if requeue_seconds is not None
                               else settings.JOB_REQUEUE_SECONDS)
    waiting = kind.model.objects.filter(status=JobStatus.QUEUED).filter(
        Q(dispatched_at__isnull=True, queued_at__lt=never_sent) | Q(dispatched_at__lt=long_ago))
    pks = list(waiting.values_list("pk", flat=True))
    for pk in pks:
        _send_after_commit(kind, pk)
    return len(pks)


def _send_after_commit(kind: JobKind, pk) -> None:
    transaction.on_commit(lambda: send(kind, pk))


def jobs_reap_all(*, kinds: list[str] | None = None, **options) -> dict:
    """The reaper over every registered kind (or the named ones), then the backlogs: {name: counts}."""
    known = {kind.name: kind for kind in job_kinds()}
    unknown = set(kinds or ()) - set(known)
    if unknown:
        raise ValueError(f"unknown job kind(s) {sorted(unknown)}; known: {sorted(known)}")
    report = {name: job_reap(kind, **options) for name, kind in known.items() if not kinds or name in kinds}
    if not kinds:
        report.update({name: {"resent": backlog.resend()} for name, backlog in _BACKLOGS.items()})
    return report
