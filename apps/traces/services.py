"""Trace writes: capture (single and batch), curation, edits, tags and scores.

Every curation change goes through here and leaves a CurationEvent, so the audit log is
complete whatever the entry point (API, admin, management command).
"""

import logging
import uuid
from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from apps.core.authentication import author
from apps.core.errors import Conflict, Invalid, TooLarge
from apps.core.metrics import CURATION_EVENTS, TRACE_DUPLICATES, TRACES_CREATED
from apps.core.readcache import namespace_changed
from apps.core.validation import validated
from apps.traces.bulk import insert_new_traces, stored_ids_by_hash, trace_models
from apps.traces.models import ALLOWED_TRANSITIONS, CurationEvent, Trace, TraceScore, TraceStatus
from apps.traces.requests import TraceReviewRequestSerializer
from apps.traces.scoring import SCORER, SCORER_VERSION, structural_score
from apps.traces.selectors import TRACE_READS, traces_visible_to
from training.trace_schema import compact_json_bytes, trace_content_hash, trace_errors

logger = logging.getLogger(__name__)


def _trace_fields(clean: dict, *, user) -> dict:
    """Column values of a new Trace row from a validated body."""
    meta = clean.get("meta") or {}
    tags = meta.get("tags") if isinstance(meta.get("tags"), list) else []
    now = timezone.now()
    return {
        "id": uuid.uuid4(),
        "created_at": now,
        "updated_at": now,
        "status": TraceStatus.CAPTURED.value,
        "trace_version": clean.get("trace_version") or "1.0",
        "prompt": clean["prompt"],
        "final_answer": clean["final_answer"],
        "steps": [{"i": s["i"], "type": s["type"], "content": s["content"]} for s in clean["steps"]],
        "meta": clean.get("meta"),
        "source": str(meta.get("source", ""))[:200],
        "category": str(meta.get("category", ""))[:200],
        "tags": [str(t) for t in tags],
        "content_hash": trace_content_hash(clean),
        "step_count": len(clean["steps"]),
        "created_by_id": getattr(author(user), "pk", None),
        # Its scoring task is sent after the commit; should that send be lost, the reaper sends it again.
        "score_due_at": now + timedelta(seconds=settings.JOB_REQUEUE_SECONDS),
    }


def _build_trace(clean: dict, *, user) -> Trace:
    return Trace(**_trace_fields(clean, user=user))


def _schedule_scoring(trace_ids: list) -> None:
    ids = [str(i) for i in trace_ids]
    if ids:
        transaction.on_commit(lambda: trace_scores_send(ids))


def trace_scores_send(trace_ids: list[str]) -> bool:
    """Send the scoring task for stored traces. A broker outage never fails the write that stored them:
    they are marked due soon instead, and the reaper's backlog pass sends them again."""
    from apps.traces.tasks import trace_scores_compute_task

    try:
        trace_scores_compute_task.delay(trace_ids)
        return True
    except Exception:  # noqa: BLE001 - any broker or network failure
        logger.warning("could not send scoring for %d trace(s); the reaper will send it again", len(trace_ids),
                       exc_info=True)
    retry_at = timezone.now() + timedelta(seconds=settings.JOB_DISPATCH_RETRY_SECONDS)
    try:
        Trace.objects.filter(id__in=trace_ids, score_due_at__isnull=False).update(score_due_at=retry_at)
    except DatabaseError:
        logger.warning("could not mark %d trace(s) due for scoring", len(trace_ids), exc_info=True)
    return False


BACKLOG_BATCH = 20_000


def trace_scores_resend_due() -> int:
    """The reaper's backlog pass: send scoring for traces whose score is due (never sent, or sent so long
    ago that the message must have been lost); returns how many traces it sent."""
    now = timezone.now()
    due = list(Trace.objects.filter(score_due_at__lt=now).order_by("score_due_at")
               .values_list("id", flat=True)[:BACKLOG_BATCH])
    sent = 0
    for start in range(0, len(due), settings.TRACE_BATCH_MAX_ITEMS):
        chunk = [str(pk) for pk in due[start:start + settings.TRACE_BATCH_MAX_ITEMS]]
        Trace.objects.filter(id__in=chunk, score_due_at__isnull=False).update(
            score_due_at=now + timedelta(seconds=settings.JOB_REQUEUE_SECONDS))
        sent += len(chunk) if trace_scores_send(chunk) else 0
    return sent


def trace_create(*, data: dict, user=None) -> tuple[Trace, bool]:
    """Store one trace. Returns (trace, created); a duplicate returns the stored twin, created=False."""
    errors = trace_errors(data)
    if errors:
        raise Invalid(errors)
    trace = _build_trace(data, user=user)
    existing = Trace.objects.filter(content_hash=trace.content_hash).first()
    if existing is not None:
        TRACE_DUPLICATES.inc()
        return existing, False
    try:
        with transaction.atomic():
            trace.save(force_insert=True)
            _schedule_scoring([trace.id])
    except IntegrityError:
        # A concurrent request stored the same content between our check and insert.
        TRACE_DUPLICATES.inc()
        return Trace.objects.get(content_hash=trace.content_hash), False
    namespace_changed(TRACE_READS)
    TRACES_CREATED.labels(trace.source or "unknown").inc()
    return trace, True


def _validate_batch(items: list) -> None:
    limit = settings.TRACE_BATCH_MAX_ITEMS
    if not isinstance(items, list):
        raise Invalid({"traces": ["Must be a list of traces."]})
    if not items:
        raise Invalid({"traces": ["Must hold at least one trace."]})
    if len(items) > limit:
        raise Invalid({"traces": [f"A batch holds at most {limit} traces (got {len(items)})."]})
    errors = {}
    for index, item in enumerate(items):
        size = len(compact_json_bytes(item))
        if size > settings.TRACE_MAX_BYTES:
            raise TooLarge(
                f"traces[{index}] is {size} bytes; one trace may be at most {settings.TRACE_MAX_BYTES} bytes."
            )
        for path, messages in trace_errors(item).items():
            errors[f"traces[{index}].{path}"] = messages
    if errors:
        raise Invalid(errors)


def trace_batch_create(*, items: list, user=None) -> dict:
    """All-or-nothing: every item validates or nothing is stored. Duplicates are reported, not stored twice."""
    _validate_batch(items)
    rows = [_trace_fields(item, user=user) for item in items]
    first_index_by_hash = {}
    for index, row in enumerate(rows):
        first_index_by_hash.setdefault(row["content_hash"], index)
    with transaction.atomic():
        stored = stored_ids_by_hash(first_index_by_hash)
        fresh = [row for i, row in enumerate(rows) if first_index_by_hash[row["content_hash"]] == i
                 and row["content_hash"] not in stored]
        try:
            with transaction.atomic():
                insert_new_traces(fresh)
            stored.update((row["content_hash"], row["id"]) for row in fresh)
        except IntegrityError:
            # Another request stored some of the same content meanwhile: skip those rows.
            Trace.objects.bulk_create(trace_models(fresh), ignore_conflicts=True, batch_size=500)
            stored = stored_ids_by_hash(first_index_by_hash)
        created, duplicates = [], []
        for index, row in enumerate(rows):
            if stored[row["content_hash"]] == row["id"]:
                created.append(row)
            else:
                duplicates.append({"index": index, "existing_id": str(stored[row["content_hash"]])})
        _hide_unseen_duplicates(duplicates, user)
        _schedule_scoring([row["id"] for row in created])
        if created:
            namespace_changed(TRACE_READS)
    TRACE_DUPLICATES.inc(len(duplicates))
    for source, count in Counter(row["source"] or "unknown" for row in created).items():
        TRACES_CREATED.labels(source).inc(count)
    return {"created": [str(row["id"]) for row in created], "duplicates": duplicates}


def _hide_unseen_duplicates(duplicates: list[dict], user) -> None:
    """A duplicate of a trace the caller may not see is reported without its id: the id would tell
    them about an object outside their reach (user None is a system caller and sees all)."""
    if user is None or not duplicates:
        return
    visible = {str(pk) for pk in traces_visible_to(user).filter(
        id__in=[d["existing_id"] for d in duplicates]).values_list("id", flat=True)}
    for duplicate in duplicates:
        if duplicate["existing_id"] not in visible:
            duplicate["existing_id"] = None


def _record_event(*, trace, action, from_status, to_status, reason, actor, actor_label, **extra):
    CURATION_EVENTS.labels(action, to_status).inc()
    return CurationEvent.objects.create(
        trace=trace,
        action=action,
        from_status=from_status,
        to_status=to_status,
        reason=reason or "",
        actor=author(actor),
        actor_label=actor_label or (actor.get_username() if actor is not None and actor.is_authenticated else ""),
        **extra,
    )


def trace_review_request(*, trace: Trace, data, actor=None, actor_label: str = "") -> Trace:
    """A review request body (TraceReviewRequestSerializer) applied to `trace`."""
    values = validated(TraceReviewRequestSerializer, data)
    return trace_review(trace=trace, to_status=values["status"], reason=values["reason"], actor=actor,
                        actor_label=actor_label)


def trace_review(*, trace: Trace, to_status: str, reason: str = "", actor=None, actor_label: str = "") -> Trace:
    """Move a trace through the curation state machine; a stale or illegal move is a Conflict."""
    if to_status not in TraceStatus.values:
        raise Invalid({"status": [f"Unknown status {to_status!r}."]})
    from_status = trace.status
    if to_status not in ALLOWED_TRANSITIONS[TraceStatus(from_status)]:
        raise Conflict(f"A trace cannot move from {from_status!r} to {to_status!r}.", code="invalid_transition")
    with transaction.atomic():
        # Conditional update: two curators acting at once cannot both win from the same state.
        # A queryset update skips auto_now, so updated_at is set here.
        changed = Trace.objects.filter(pk=trace.pk, status=from_status).update(status=to_status,
                                                                               updated_at=timezone.now())
        if changed != 1:
            raise Conflict("The trace changed while you were reviewing it; reload and retry.",
                           code="stale_status")
        _record_event(trace=trace, action="review", from_status=from_status, to_status=to_status,
                      reason=reason, actor=actor, actor_label=actor_label)
        namespace_changed(TRACE_READS)
    trace.status = to_status
    trace.updated_at = Trace.objects.values_list("updated_at", flat=True).get(pk=trace.pk)
    return trace


def trace_bulk_review(*, traces, to_status: str, reason: str, actor=None) -> dict:
    """Admin bulk action: applies the move where it is legal, reports the rest."""
    moved, skipped = 0, 0
    for trace in traces:
        try:
            trace_review(trace=trace, to_status=to_status, reason=reason, actor=actor)
            moved += 1
        except Conflict:
            skipped += 1
    return {"moved": moved, "skipped": skipped}


def trace_tag(*, traces, tags: list[str], reason: str = "", actor=None) -> int:
    tags = sorted({t.strip() for t in tags if t.strip()})
    if not tags:
        raise Invalid({"tags": ["Give at least one non-empty tag."]})
    count = 0
    with transaction.atomic():
        for trace in traces:
            new = [t for t in tags if t not in trace.tags]
            if not new:
                continue
            trace.tags = [*trace.tags, *new]
            trace.save(update_fields=["tags", "updated_at"])
            _record_event(trace=trace, action="tag", from_status=trace.status, to_status=trace.status,
                          reason=reason, actor=actor, actor_label="", tags_added=new)
            count += 1
        if count:
            namespace_changed(TRACE_READS)
    return count


# What an edit may change; status, provenance and the id are never touched by an edit.
EDITED_FIELDS = ("trace_version", "prompt", "final_answer", "steps", "meta", "source", "category", "tags",
                 "content_hash", "step_count", "score_due_at")


def trace_edit(*, trace: Trace, data: dict, reason: str = "", actor=None) -> Trace:
    """Replace a trace's content; the original is kept in the audit log's snapshot.

    The row is locked while it is read, checked and written, and only the content columns are
    written, so a review that lands meanwhile is neither lost nor reverted. Another trace with the
    same content is a Conflict, also when it is stored concurrently (the unique hash decides).
    """
    errors = trace_errors(data)
    if errors:
        raise Invalid(errors)
    new = _trace_fields(data, user=None)
    try:
        with transaction.atomic():
            locked = Trace.objects.select_for_update().get(pk=trace.pk)
            if _content_taken(new["content_hash"], exclude_pk=locked.pk):
                raise Conflict("Another trace already has this content.", code="duplicate")
            original = locked.as_trace_json()
            new["tags"] = _tags_after_edit(locked, new["tags"])
            for field in EDITED_FIELDS:
                setattr(locked, field, new[field])
            locked.save(update_fields=[*EDITED_FIELDS, "updated_at"])
            _record_event(trace=locked, action="edit", from_status=locked.status, to_status=locked.status,
                          reason=reason, actor=actor, actor_label="", snapshot=original)
            _schedule_scoring([locked.id])
            namespace_changed(TRACE_READS)
    except IntegrityError:
        raise Conflict("Another trace already has this content.", code="duplicate") from None
    return locked


def _content_taken(content_hash: str, *, exclude_pk) -> bool:
    return Trace.objects.filter(content_hash=content_hash).exclude(pk=exclude_pk).exists()


def _tags_after_edit(trace: Trace, new_meta_tags: list[str]) -> list[str]:
    """The edited meta's tags, plus the tags curators added through the tag action (those were never
    in meta, so an edit of meta must not drop them)."""
    old_meta_tags = (trace.meta or {}).get("tags") if isinstance((trace.meta or {}).get("tags"), list) else []
    curated = [tag for tag in trace.tags if tag not in {str(t) for t in old_meta_tags}]
    return [*new_meta_tags, *(tag for tag in curated if tag not in new_meta_tags)]


def trace_score(*, trace: Trace) -> tuple[TraceScore, bool]:
    """Score one trace now; returns (score, created). One row per trace and scorer version."""
    score, details = structural_score(trace.as_trace_json())
    row, created = TraceScore.objects.update_or_create(
        trace=trace, scorer=SCORER, scorer_version=SCORER_VERSION,
        defaults={"score": score, "details": details, "created_at": timezone.now()},
    )
    return row, created


def trace_scores_compute(*, trace_ids: list[str]) -> int:
    """Score traces in bulk (the capture task). An upsert on (trace, scorer, version): the same task
    delivered twice, or a trace scored again, still leaves one row."""
    rows = [TraceScore(trace_id=trace.pk, scorer=SCORER, scorer_version=SCORER_VERSION, score=score,
                       details=details, created_at=timezone.now())
            for trace in Trace.objects.filter(id__in=trace_ids).only(*_SCORED_COLUMNS).iterator(chunk_size=500)
            for score, details in [structural_score(trace.as_trace_json())]]
    TraceScore.objects.bulk_create(rows, batch_size=500, update_conflicts=True,
                                   unique_fields=["trace", "scorer", "scorer_version"],
                                   update_fields=["score", "details", "created_at"])
    Trace.objects.filter(id__in=[row.trace_id for row in rows], score_due_at__isnull=False).update(score_due_at=None)
    return len(rows)


_SCORED_COLUMNS = ("id", "trace_version", "prompt", "final_answer", "steps", "meta")
