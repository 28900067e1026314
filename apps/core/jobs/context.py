"""Running work under a claim: the job context (heartbeat, progress, cancel, self-fencing) and `job_run`.

A background thread of the context, on its own database connection, beats the heartbeat and writes the
latest progress every `JOB_HEARTBEAT_SECONDS` and reads the cancel flag every second; the work loop only
touches memory (`progress()`, `cancel_requested`, `check()`).

Self-fencing: when the claim has not been renewed for `JOB_LEASE_SECONDS` (the database is unreachable
from this worker, or a query hangs on a dead connection), a watchdog thread that does no I/O declares the
claim lost and runs the fence callbacks (the follow loop registers "kill the child"), even while the beat
or the work is stuck in a query. The lease is shorter than `JOB_STALE_SECONDS`, so the worker has stopped
its child and given up before the reaper can hand the row to another attempt: two attempts never run at once.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback as tb
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connections

from apps.core.errors import DomainError, Unavailable
from apps.core.jobs.claims import (
    Claim,
    JobCancelled,
    JobInterrupted,
    JobLost,
    job_beat,
    job_claim,
    job_finish,
    job_release,
)
from apps.core.jobs.kinds import announce_finished, kind_of, send
from apps.core.models import JobStatus
from apps.core.paths import scrub_server_paths
from apps.core.store import STORE_UNAVAILABLE

logger = logging.getLogger(__name__)

DATABASE_UNREACHABLE = (OperationalError, InterfaceError)
CANCEL_POLL_SECONDS = 1.0
WATCHDOG_SECONDS = 0.25
RETRY_SECONDS = 1.0


def reset_connections_after_error() -> None:
    """Drop this thread's broken database connections so the next query reconnects (outside a transaction,
    where Django would otherwise keep a connection that failed)."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


class JobContext:
    """Handed to the work function: report progress, learn about cancellation or a lost claim."""

    def __init__(self, claim: Claim, row, beat_seconds: float, lease_seconds: float | None = None):
        self.claim, self.row, self.beat_seconds = claim, row, beat_seconds
        self.lease_seconds = lease_seconds if lease_seconds is not None else settings.JOB_LEASE_SECONDS
        self.done, self.total = 0, None
        self.lost, self.lost_reason = False, ""
        self.cancel_requested = bool(getattr(row, "cancel_requested", False))
        self.renewed_at = time.monotonic()
        self._fence_callbacks: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{claim.pk}", daemon=True)
        self._watchdog = threading.Thread(target=self._watch, name=f"fence-{claim.pk}", daemon=True)

    def progress(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        self.check()

    def check(self) -> None:
        if self.lost:
            raise JobLost(f"{self.claim.model.__name__} {self.claim.pk}: attempt {self.claim.attempt} "
                          f"{self.lost_reason or 'was reaped'}")

    def lease_expired(self) -> bool:
        return time.monotonic() - self.renewed_at > self.lease_seconds

    def on_fence(self, callback: Callable[[], None]) -> None:
        """Run `callback` (from the watchdog thread) if the claim is ever lost, e.g. to kill a child."""
        self._fence_callbacks.append(callback)
        if self.lost:
            callback()

    def _fence(self, reason: str) -> None:
        if self.lost:
            return
        self.lost, self.lost_reason = True, reason
        logger.error("%s %s: attempt %s %s", self.claim.model.__name__, self.claim.pk, self.claim.attempt, reason)
        for callback in self._fence_callbacks:
            try:
                callback()
            except Exception:  # noqa: BLE001 - a fence callback must not stop the others
                logger.exception("fence callback of %s %s failed", self.claim.model.__name__, self.claim.pk)

    def _watch(self) -> None:
        while not self._stop.wait(WATCHDOG_SECONDS):
            if self.lease_expired():
                self._fence(f"could not renew its claim for {self.lease_seconds:.0f}s and fenced itself off")
                return

    def _loop(self) -> None:
        last_beat = time.monotonic()
        try:
            while not self._stop.wait(min(CANCEL_POLL_SECONDS, self.beat_seconds)):
                if time.monotonic() - last_beat >= self.beat_seconds:
                    last_beat = time.monotonic()
                    self._beat_once()
                else:
                    self._poll_cancel()
        finally:
            connections.close_all()  # this thread's own connections

    def _beat_once(self) -> None:
        try:
            if job_beat(self.claim, progress=(self.done, self.total)):
                self.renewed_at = time.monotonic()
                self._poll_cancel()
                return
            # Not ours any more, unless this connection cannot see the row at all (work running
            # inside a caller's uncommitted transaction, as in eager mode within a request: nothing
            # else can take the row over, so there is nothing to fence against).
            if self.claim.model.objects.filter(pk=self.claim.pk).exists():
                self._fence("was reaped")
            else:
                self.renewed_at = time.monotonic()
        except DatabaseError:
            reset_connections_after_error()
            logger.warning("heartbeat of %s %s failed; retrying", self.claim.model.__name__, self.claim.pk,
                           exc_info=True)

    def _poll_cancel(self) -> None:
        if self.cancel_requested:
            return
        try:
            self.cancel_requested = self.claim.owned_rows().filter(cancel_requested=True).exists()
        except DatabaseError:
            reset_connections_after_error()

    def __enter__(self):
        self._thread.start()
        self._watchdog.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)
        self._watchdog.join(timeout=5)

    def retry_while_owned(self, write: Callable[[], Any]):
        """Run a write until it succeeds. Through a database outage shorter than the lease it is retried,
        after that the claim is given up (JobLost) so the reaper's retry can take over. Through an artifact
        store outage it is retried for STORE_OUTAGE_SECONDS (the claim stays alive meanwhile), then the
        job goes back to the queue (job_run releases it on the Unavailable)."""
        store_deadline = time.monotonic() + settings.STORE_OUTAGE_SECONDS
        while True:
            try:
                return write()
            except DatabaseError:
                reset_connections_after_error()
                self.check()  # the watchdog fences the claim off once the lease has run out
                logger.warning("database write of %s %s failed; retrying", self.claim.model.__name__,
                               self.claim.pk, exc_info=True)
            except Unavailable as exc:
                if exc.code != STORE_UNAVAILABLE or time.monotonic() > store_deadline:
                    raise
                self.check()
                logger.warning("%s %s: %s; retrying", self.claim.model.__name__, self.claim.pk, exc.message)
            time.sleep(RETRY_SECONDS)


def job_run(model, pk, work: Callable[[Any, JobContext], dict | None]) -> str | None:
    """Claim the row and run `work(row, context)`; returns the final status, or None when another
    delivery owns (or already finished) the job, or this attempt lost it.

    `work` returns extra column values for the completed row. A DomainError fails the job with its
    code and message (bad input does not get better on retry); JobCancelled cancels it; JobInterrupted
    queues it again for another attempt; any other exception fails it (the traceback is kept for the
    admin, never in the message). A claim lost to the reaper ends quietly: the retry owns the row now.
    The kind's listeners hear of the end only when the final state was really written.
    """
    claim = job_claim(model, pk)
    if claim is None:
        logger.info("%s %s: nothing to claim (finished, running elsewhere or unknown)", model.__name__, pk)
        return None
    row = model.objects.get(pk=pk)
    with JobContext(claim, row, settings.JOB_HEARTBEAT_SECONDS) as context:
        try:
            fields = work(row, context) or {}
        except JobLost as exc:
            logger.warning("%s %s: stopping: %s", model.__name__, pk, exc)
            return None
        except JobInterrupted as exc:
            return _release(claim, context, str(exc))
        except DATABASE_UNREACHABLE as exc:
            # An outage, not a bug in the job: another attempt resumes it (now if the database is back,
            # else through the reaper), instead of failing it for good.
            logger.warning("%s %s: database unreachable during the work: %s", model.__name__, pk, exc)
            return _release(claim, context, "the database was unreachable during the work")
        except JobCancelled as exc:
            return _finish(claim, context, JobStatus.CANCELLED, error_code="cancelled",
                           error=str(exc) or "Cancelled on request.")
        except Unavailable as exc:
            # A dependency that is away (the artifact store, a judge service): another attempt tries again.
            logger.warning("%s %s: %s", model.__name__, pk, exc.message)
            return _release(claim, context, exc.message)
        except DomainError as exc:
            return _finish(claim, context, JobStatus.FAILED, error_code=exc.code, error=exc.message)
        except Exception as exc:  # noqa: BLE001 - the row must end in a final state whatever happened
            logger.exception("%s %s crashed", model.__name__, pk)
            return _finish(claim, context, JobStatus.FAILED, error_code="crash",
                           error=f"{type(exc).__name__}: {exc}", traceback=tb.format_exc())
        return _finish(claim, context, JobStatus.COMPLETED, **fields)


def _finish(claim: Claim, context: JobContext, status: str, **fields) -> str | None:
    if "error" in fields:
        fields["error"] = scrub_server_paths(fields["error"])
    try:
        finished = context.retry_while_owned(lambda: job_finish(
            claim, status, progress_done=context.done, progress_total=context.total, **fields))
    except JobLost as exc:
        logger.warning("%s %s: could not record %s: %s", claim.model.__name__, claim.pk, status, exc)
        return None
    if not finished:
        logger.warning("%s %s: attempt %s ended %s after losing its claim; nothing recorded",
                       claim.model.__name__, claim.pk, claim.attempt, status)
        return None
    announce_finished(claim.model, claim.pk, status)
    return status


def _release(claim: Claim, context: JobContext, reason: str) -> str | None:
    try:
        status = context.retry_while_owned(lambda: job_release(claim, reason=scrub_server_paths(reason)))
    except JobLost:
        return None
    if status == JobStatus.QUEUED:
        kind = kind_of(claim.model)
        if kind is not None:
            send(kind, claim.pk)
    elif status == JobStatus.FAILED:
        announce_finished(claim.model, claim.pk, status)
    return status
