"""The one job mechanism: claim, heartbeat, finish once, reap (SPEC §3, HOUSE_STYLE "background work").

Every background job is a row of a model inheriting `apps.core.models.Job`. A Celery task receives
the row's id and calls `job_run(model, id, work)`, which

1. claims the row with a conditional update (`queued → running`, `attempt + 1`); a second delivery
   of the same message finds nothing to claim and returns without doing the work;
2. runs `work(row, context)` while a thread beats the heartbeat (and writes progress) every
   `JOB_HEARTBEAT_SECONDS`, on its own database connection so the beat is visible while the work
   holds a long transaction;
3. finishes in exactly one final state, fenced by the claimed attempt.

The reaper (`job_reap`, run by Celery beat and `manage.py reap_jobs`) marks a running row whose
heartbeat is older than `JOB_STALE_SECONDS` `lost`, then queues it again (and re-enqueues its task)
while attempts remain, or fails it with the reason. It also re-enqueues rows that stayed `queued`
for `JOB_REQUEUE_SECONDS`, in case their message was lost: a duplicate message is harmless, since
only one delivery can claim.

Apps register each job model once (`register_job_kind`, from their AppConfig.ready) with the
function that enqueues its task, so this module never imports another app.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback as tb
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.models import F
from django.utils import timezone

from apps.core.errors import DomainError
from apps.core.models import FINAL_JOB_STATUSES, JobStatus

logger = logging.getLogger(__name__)


class JobLost(Exception):
    """This worker no longer owns its row (the reaper gave the job to another attempt)."""


class JobCancelled(Exception):
    """Raised by work that stopped because cancellation was requested."""


def worker_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Claim:
    model: type
    pk: Any
    attempt: int

    def owned_rows(self):
        """The row, as long as this attempt still owns it."""
        return self.model.objects.filter(pk=self.pk, status=JobStatus.RUNNING, attempt=self.attempt)


def job_claim(model, pk, *, worker: str | None = None) -> Claim | None:
    """`queued → running` for exactly one caller; None for everyone else (and for unknown ids)."""
    now = timezone.now()
    with transaction.atomic():
        changed = model.objects.filter(pk=pk, status=JobStatus.QUEUED).update(
            status=JobStatus.RUNNING, attempt=F("attempt") + 1, worker=worker or worker_label(),
            heartbeat_at=now, started_at=now, finished_at=None, error_code="", error="", traceback="",
        )
        if changed != 1:
            return None
        # The update holds the row lock until commit, so this reads our own attempt number.
        attempt = model.objects.filter(pk=pk).values_list("attempt", flat=True).get()
    return Claim(model=model, pk=pk, attempt=attempt)


def job_beat(claim: Claim, *, progress: tuple[int, int | None] | None = None) -> bool:
    """Refresh the heartbeat (and progress); False when the row is no longer this attempt's."""
    fields = {"heartbeat_at": timezone.now()}
    if progress is not None:
        fields["progress_done"], fields["progress_total"] = progress
    return claim.owned_rows().update(**fields) == 1


def job_finish(claim: Claim, status: str, *, error_code: str = "", error: str = "", traceback: str = "",
               **fields) -> bool:
    """Move the claimed row to its one final state; False if it was not ours any more."""
    if status not in FINAL_JOB_STATUSES:
        raise ValueError(f"{status!r} is not a final job status")
    now = timezone.now()
    return claim.owned_rows().update(status=status, finished_at=now, heartbeat_at=now, error_code=error_code,
                                     error=error[:10_000], traceback=traceback[-50_000:], **fields) == 1


def job_cancel(model, pk) -> str | None:
    """Ask a job to stop. A queued job is cancelled at once; a running one sees the flag on its next
    beat. Returns the status after the request, or None when the job had already finished."""
    now = timezone.now()
    if model.objects.filter(pk=pk, status__in=[JobStatus.QUEUED, JobStatus.LOST]).update(
            status=JobStatus.CANCELLED, cancel_requested=True, finished_at=now, error_code="cancelled",
            error="Cancelled before it started.") == 1:
        return JobStatus.CANCELLED
    if model.objects.filter(pk=pk, status=JobStatus.RUNNING).update(cancel_requested=True) == 1:
        return JobStatus.RUNNING
    return None


# --- running work ------------------------------------------------------------------------------

class JobContext:
    """Handed to the work function: report progress, learn about cancellation or a lost claim.

    A background thread writes the heartbeat and the latest progress; `progress()` and `check()`
    only touch memory, so reporting is free for the work loop.
    """

    def __init__(self, claim: Claim, row, beat_seconds: float):
        self.claim, self.row, self.beat_seconds = claim, row, beat_seconds
        self.done, self.total = 0, None
        self.lost = False
        self.cancel_requested = bool(getattr(row, "cancel_requested", False))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat_loop, name=f"heartbeat-{claim.pk}", daemon=True)

    def progress(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        self.check()

    def check(self) -> None:
        if self.lost:
            raise JobLost(f"{self.claim.model.__name__} {self.claim.pk}: attempt {self.claim.attempt} was reaped")

    def _beat_loop(self) -> None:
        try:
            while not self._stop.wait(self.beat_seconds):
                self._beat_once()
        finally:
            connections.close_all()  # this thread's own connections

    def _beat_once(self) -> None:
        try:
            if job_beat(self.claim, progress=(self.done, self.total)):
                self.cancel_requested = self.claim.owned_rows().filter(cancel_requested=True).exists()
                return
            # Not ours any more, unless this connection cannot see the row at all (work running
            # inside a caller's uncommitted transaction, as in eager mode within a request).
            if self.claim.model.objects.filter(pk=self.claim.pk).exists():
                self.lost = True
        except DatabaseError:
            logger.warning("heartbeat of %s %s failed; retrying", self.claim.model.__name__, self.claim.pk,
                           exc_info=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)


def job_run(model, pk, work: Callable[[Any, JobContext], dict | None]) -> str | None:
    """Claim the row and run `work(row, context)`; returns the final status, or None when another
    delivery owns (or already finished) the job.

    `work` returns extra column values for the completed row. A DomainError fails the job with its
    code and message (bad input does not get better on retry); JobCancelled cancels it; any other
    exception fails it with the traceback. A claim lost to the reaper ends quietly: the retry owns
    the row now.
    """
    claim = job_claim(model, pk)
    if claim is None:
        logger.info("%s %s: nothing to claim (finished, running elsewhere or unknown)", model.__name__, pk)
        return None
    row = model.objects.get(pk=pk)
    with JobContext(claim, row, settings.JOB_HEARTBEAT_SECONDS) as context:
        try:
            fields = work(row, context) or {}
        except JobLost:
            logger.warning("%s %s: attempt %s lost its claim; stopping", model.__name__, pk, claim.attempt)
            return JobStatus.LOST
        except JobCancelled as exc:
            return _finish(claim, context, JobStatus.CANCELLED, error_code="cancelled",
                           error=str(exc) or "Cancelled on request.")
        except DomainError as exc:
            return _finish(claim, context, JobStatus.FAILED, error_code=exc.code, error=exc.message)
        except Exception as exc:  # noqa: BLE001 - the row must end in a final state whatever happened
            logger.exception("%s %s crashed", model.__name__, pk)
            return _finish(claim, context, JobStatus.FAILED, error_code="crash",
                           error=f"{type(exc).__name__}: {exc}", traceback=tb.format_exc())
    return _finish(claim, context, JobStatus.COMPLETED, **fields)


def _finish(claim: Claim, context: JobContext, status: str, **fields) -> str:
    job_finish(claim, status, progress_done=context.done, progress_total=context.total, **fields)
    return status


# --- kinds and the reaper ------------------------------------------------------------------------

@dataclass(frozen=True)
class JobKind:
    name: str
    model: type
    enqueue: Callable[[Any], None]  # sends the task for one row id
    stale_seconds: int | None = None  # None: settings.JOB_STALE_SECONDS


_KINDS: dict[str, JobKind] = {}


def register_job_kind(kind: JobKind) -> None:
    _KINDS[kind.name] = kind


def job_kinds() -> list[JobKind]:
    return list(_KINDS.values())


def job_reap(kind: JobKind, *, stale_seconds: float | None = None, requeue_seconds: float | None = None,
             now=None) -> dict:
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
    requeue = now - timedelta(seconds=requeue_seconds if requeue_seconds is not None
                              else settings.JOB_REQUEUE_SECONDS)
    for pk in model.objects.filter(status=JobStatus.QUEUED, queued_at__lt=requeue).values_list("pk", flat=True):
        if model.objects.filter(pk=pk, status=JobStatus.QUEUED, queued_at__lt=requeue).update(queued_at=now):
            _enqueue(kind, pk)
            report["reenqueued"] += 1
    return report


def _resolve_lost(kind: JobKind, row: dict, now) -> str:
    rows = kind.model.objects.filter(pk=row["pk"], status=JobStatus.LOST, attempt=row["attempt"])
    seen = row["heartbeat_at"].isoformat(timespec="seconds") if row["heartbeat_at"] else "never"
    reason = f"attempt {row['attempt']} lost: no heartbeat since {seen}"
    if row["cancel_requested"]:
        rows.update(status=JobStatus.CANCELLED, finished_at=now, error_code="cancelled", error=reason)
        return "cancelled"
    if row["attempt"] < row["max_attempts"]:
        if rows.update(status=JobStatus.QUEUED, queued_at=now, error_code="lost", error=reason):
            _enqueue(kind, row["pk"])
        return "requeued"
    rows.update(status=JobStatus.FAILED, finished_at=now, error_code="lost",
                error=f"{reason}; gave up after {row['attempt']} of {row['max_attempts']} attempts")
    return "failed"


def _enqueue(kind: JobKind, pk) -> None:
    transaction.on_commit(lambda: kind.enqueue(pk))


def jobs_reap_all(*, kinds: list[str] | None = None, **options) -> dict:
    """The reaper over every registered kind (or the named ones): {kind name: counts}."""
    unknown = set(kinds or ()) - set(_KINDS)
    if unknown:
        raise ValueError(f"unknown job kind(s) {sorted(unknown)}; known: {sorted(_KINDS)}")
    return {kind.name: job_reap(kind, **options) for kind in job_kinds() if not kinds or kind.name in kinds}
