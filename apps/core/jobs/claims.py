"""Claims: which attempt owns a job row, and writes that only the owning attempt can make.

A claim is the conditional update `queued → running, attempt + 1`; every later write of that attempt
(heartbeat, progress, the rows it produces, its one final state) is fenced by `(status=running,
attempt=N)`, so a worker that lost its claim (reaped while partitioned, or frozen and woken up) can
never write over the attempt that replaced it.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.core.models import FINAL_JOB_STATUSES, JobStatus


class JobLost(Exception):
    """This worker no longer owns its row (the reaper gave the job to another attempt, or the worker
    fenced itself off because it could not renew its claim)."""


class JobCancelled(Exception):
    """Raised by work that stopped because cancellation was requested."""


class JobInterrupted(Exception):
    """Raised by work that stopped for now (its host is shutting down, its folder is busy): the job goes
    back to the queue to be resumed by another attempt, instead of ending."""


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

    def lost(self) -> JobLost:
        return JobLost(f"{self.model.__name__} {self.pk}: attempt {self.attempt} no longer owns the job")

    def update(self, **fields) -> None:
        """Write columns of the job row, only while this attempt owns it (JobLost otherwise)."""
        if self.owned_rows().update(**fields) != 1:
            raise self.lost()

    @contextlib.contextmanager
    def fenced(self) -> Iterator[None]:
        """A transaction in which this attempt owns the row (it is locked until commit): rows the work
        produces (metrics, log lines, predictions, artifacts) are written only by the owner."""
        with transaction.atomic():
            if not self.owned_rows().select_for_update().exists():
                raise self.lost()
            yield


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


def job_release(claim: Claim, *, reason: str) -> str | None:
    """Give an interrupted attempt's job back to the queue (to resume elsewhere), or fail it when it has
    used its attempts. Returns the new status, or None if the row was not this attempt's any more."""
    row = claim.owned_rows().values("max_attempts").first()
    if row is None:
        return None
    if claim.attempt >= row["max_attempts"]:
        done = job_finish(claim, JobStatus.FAILED, error_code="interrupted",
                          error=f"{reason}; gave up after {claim.attempt} of {row['max_attempts']} attempts")
        return JobStatus.FAILED if done else None
    released = claim.owned_rows().update(status=JobStatus.QUEUED, queued_at=timezone.now(), dispatched_at=None,
                                         error_code="interrupted", error=reason[:10_000])
    return JobStatus.QUEUED if released else None
