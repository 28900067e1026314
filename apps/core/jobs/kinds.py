"""Job kinds: how a row's task is sent, and who hears that a job ended.

Apps register each job model once (`register_job_kind`, from their AppConfig.ready) with the function
that sends its task and the one that announces its end, so this package never imports another app.

Sending happens after the commit and never fails the caller: a broker that is down leaves the row
`queued` with `dispatched_at` empty, and the reaper sends it again on its next pass. An end is
announced exactly when a final state was really written: by the owning attempt's fenced finish, by a
cancel of a queued job, or by the reaper giving up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.core.models import JobStatus

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobKind:
    name: str
    model: type
    enqueue: Callable[[Any], None]  # sends the task for one row id
    finished: Callable[[Any, str], None] | None = None  # (row id, final status), after the final write
    stale_seconds: int | None = None  # None: settings.JOB_STALE_SECONDS


_KINDS: dict[str, JobKind] = {}


def register_job_kind(kind: JobKind) -> None:
    _KINDS[kind.name] = kind


def job_kinds() -> list[JobKind]:
    return list(_KINDS.values())


def kind_of(model) -> JobKind | None:
    return next((kind for kind in _KINDS.values() if kind.model is model), None)


def job_dispatch(model, pk) -> None:
    """Send the row's task once the surrounding transaction commits (at once outside one)."""
    kind = kind_of(model)
    if kind is None:
        raise LookupError(f"{model.__name__} is not a registered job kind")
    transaction.on_commit(lambda: send(kind, pk))


def send(kind: JobKind, pk) -> bool:
    """Send the task now; on success note when (the reaper re-sends rows never sent). Never raises: the
    row is already committed, so a broker outage must not turn the caller's success into an error."""
    try:
        kind.enqueue(pk)
    except Exception:  # noqa: BLE001 - any broker or network failure; the reaper sends it again
        logger.warning("could not send the %s task for %s; the reaper will send it again", kind.name, pk,
                       exc_info=True)
        return False
    try:
        kind.model.objects.filter(pk=pk, status=JobStatus.QUEUED).update(dispatched_at=timezone.now())
    except Exception:  # noqa: BLE001 - a second message later is harmless: only one delivery claims
        logger.warning("sent the %s task for %s but could not record it", kind.name, pk, exc_info=True)
    return True


def announce_finished(model, pk, status: str) -> None:
    """Tell the kind's listeners that a job reached `status`; their failures are logged, not raised
    (the final state is already written, and the reconcilers that read rows catch up)."""
    kind = kind_of(model)
    if kind is None or kind.finished is None:
        return
    try:
        kind.finished(pk, status)
    except Exception:  # noqa: BLE001 - a listener's failure must not undo or hide the job's end
        logger.exception("listeners of %s %s (%s) failed", kind.name, pk, status)


def job_cancel(model, pk) -> str | None:
    """Ask a job to stop. A queued (or lost) job is cancelled at once and its end announced; a running one
    sees the flag through its job context. Returns the status after the request, or None when the job had
    already finished."""
    now = timezone.now()
    if model.objects.filter(pk=pk, status__in=[JobStatus.QUEUED, JobStatus.LOST]).update(
            status=JobStatus.CANCELLED, cancel_requested=True, finished_at=now, error_code="cancelled",
            error="Cancelled before it started.") == 1:
        announce_finished(model, pk, JobStatus.CANCELLED)
        return JobStatus.CANCELLED
    if model.objects.filter(pk=pk, status=JobStatus.RUNNING).update(cancel_requested=True) == 1:
        return JobStatus.RUNNING
    return None
