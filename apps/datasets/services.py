"""Dataset writes: building immutable versions, deleting them, storing generator output.

A build runs in four steps so that a version's rows and its files exist together or not at all:

1. select the trace ids in the database (`selectors.select_trace_ids`);
2. freeze: stream the traces in pages, writing `data.jsonl` into a private staging folder while
   hashing it and assigning splits;
3. store: one transaction inserts the version row and its items, read back from the staged file;
4. publish: after the commit, one `os.replace` moves the folder under its id. If that fails the rows
   are deleted again; if the transaction fails the staging folder is removed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.core.db import copy_rows
from apps.core.exceptions import Conflict, FieldValidationError
from apps.datasets import storage
from apps.datasets.content import CONTENT_HASH_METHOD, SPLIT_METHOD, ContentAccumulator
from apps.datasets.models import DatasetItem, DatasetVersion
from apps.datasets.selectors import select_trace_ids
from apps.datasets.spec import BuildSpec
from apps.traces.models import Trace, TraceStatus
from apps.traces.services import trace_batch_create, trace_review
from training.render import EXPORT_FORMATS, TEMPLATE_NAME, TEMPLATE_VERSION
from training.run_files import git_sha

DATASET_SCHEMA_VERSION = "1.0"
BUILDER_VERSION = "1"
FREEZE_PAGE = 2000
INSERT_BATCH = 10_000
_TRACE_COLUMNS = ("id", "trace_version", "prompt", "final_answer", "steps", "meta")


@dataclass
class Frozen:
    trace_ids: list[str]
    splits: list[str]
    split_counts: dict
    stats: dict
    content_hash: str
    staging: Path


@functools.lru_cache(maxsize=1)
def _git_sha() -> str | None:
    return git_sha()


def dataset_version_build(*, spec: BuildSpec, user=None, actor_label: str = "") -> tuple[DatasetVersion, bool]:
    """Freeze the traces `spec` selects into an immutable version; returns (version, created).

    `user=None` is a system caller (management commands) that sees every trace. Rebuilding the same
    content returns the stored version with created=False; an existing id with other content is a
    Conflict (409).
    """
    parent = _parent(spec)
    storage.sweep_stale_staging()
    trace_ids, selection_report = select_trace_ids(user=user, spec=spec)
    staging = storage.new_staging_dir(spec.dataset_id)
    try:
        frozen = _freeze(trace_ids, spec, staging)
        existing = DatasetVersion.objects.filter(pk=spec.dataset_id).first()
        if existing is not None:
            storage.discard(staging)
            return _same_or_conflict(existing, frozen), False
        manifest = _manifest(spec, frozen, selection_report, created_by=_label(user, actor_label))
        storage.write_json(staging / "manifest.json", manifest)
        return _store(spec, frozen, manifest, parent=parent, user=user), True
    except IntegrityError:
        storage.discard(staging)
        existing = DatasetVersion.objects.filter(pk=spec.dataset_id).first()
        if existing is None:  # not our id: a selected trace was deleted before its item was stored
            raise Conflict("A selected trace was deleted during the build; build again.",
                           code="selection_changed") from None
        # A concurrent build of the same id committed first; answer as if we had come second.
        return _same_or_conflict(existing, frozen), False
    except BaseException:
        storage.discard(staging)
        raise


def _parent(spec: BuildSpec) -> DatasetVersion | None:
    if not spec.parent_dataset_id:
        return None
    parent = DatasetVersion.objects.filter(pk=spec.parent_dataset_id).first()
    if parent is None:
        raise FieldValidationError({"parent_dataset_id": [f"No dataset version {spec.parent_dataset_id!r}."]})
    return parent


def _label(user, actor_label: str) -> str | None:
    if actor_label:
        return actor_label
    return user.get_username() if user is not None and user.is_authenticated else None


def _freeze(trace_ids: list, spec: BuildSpec, staging: Path) -> Frozen:
    content = ContentAccumulator(seed=spec.split_seed, ratios=spec.split)
    with open(staging / "data.jsonl", "w", encoding="utf-8", newline="") as out:
        for start in range(0, len(trace_ids), FREEZE_PAGE):
            page = trace_ids[start:start + FREEZE_PAGE]
            rows = {row[0]: row for row in Trace.objects.filter(id__in=page).values_list(*_TRACE_COLUMNS)}
            for trace_id in page:
                if trace_id not in rows:
                    raise Conflict("A selected trace was deleted during the build; build again.",
                                   code="selection_changed")
                _, trace_version, prompt, final_answer, steps, meta = rows[trace_id]
                trace = {"trace_version": trace_version, "prompt": prompt, "final_answer": final_answer,
                         "steps": steps, "meta": meta}
                line, _ = content.add(trace, str(trace_id))
                out.write(line + "\n")
    return Frozen(trace_ids=[str(i) for i in trace_ids], splits=content.splits,
                  split_counts=content.split_counts(), stats=content.stats(),
                  content_hash=content.content_hash, staging=staging)


def _same_or_conflict(existing: DatasetVersion, frozen: Frozen) -> DatasetVersion:
    same_splits = existing.manifest.get("split_assignment") == frozen.splits
    if existing.content_hash == frozen.content_hash and same_splits:
        return existing
    what = "other traces or content" if existing.content_hash != frozen.content_hash else "other split assignments"
    raise Conflict(
        f"Dataset {existing.pk!r} already exists with {what}; versions are immutable, so build a new version.",
        code="dataset_exists",
        extra={"dataset_id": existing.pk, "existing_content_hash": existing.content_hash,
               "requested_content_hash": frozen.content_hash},
    )


def _manifest(spec: BuildSpec, frozen: Frozen, selection_report: dict, *, created_by: str | None) -> dict:
    now = timezone.now().isoformat()
    return {
        "dataset_id": spec.dataset_id,
        "name": spec.name,
        "version": spec.version,
        "dataset_schema_version": DATASET_SCHEMA_VERSION,
        "created_at": now,
        "created_by": created_by,
        "filters": spec.filters,
        "selection": {**spec.selection(), **selection_report},
        "trace_count": len(frozen.trace_ids),
        "trace_ids": frozen.trace_ids,
        "splits": frozen.split_counts,
        "split": {"ratios": spec.split, "seed": spec.split_seed, "method": SPLIT_METHOD},
        "split_assignment": frozen.splits,
        "stats": frozen.stats,
        "content_hash": frozen.content_hash,
        "content_hash_method": CONTENT_HASH_METHOD,
        "files": {"data": "data.jsonl", "manifest": "manifest.json"},
        "export_formats": list(EXPORT_FORMATS),
        "render_template": {"name": TEMPLATE_NAME, "version": TEMPLATE_VERSION},
        "provenance": {"source": "tunix-rt", **spec.provenance, "builder_version": BUILDER_VERSION,
                       "build_timestamp": now, "git_sha": _git_sha()},
        "session_id": spec.session_id or None,
        "parent_dataset_id": spec.parent_dataset_id,
    }


def _store(spec: BuildSpec, frozen: Frozen, manifest: dict, *, parent, user) -> DatasetVersion:
    counts = frozen.split_counts
    with transaction.atomic():
        version = DatasetVersion.objects.create(
            id=spec.dataset_id, name=spec.name, version=spec.version, content_hash=frozen.content_hash,
            selection_strategy=spec.strategy, trace_count=len(frozen.trace_ids), train_count=counts["train"],
            val_count=counts["val"], test_count=counts["test"], session_id=spec.session_id, parent=parent,
            created_by=user if user is not None and user.is_authenticated else None, stats=frozen.stats,
            manifest=manifest,
        )
        _insert_items(version, frozen)
        transaction.on_commit(functools.partial(_publish_or_undo, frozen.staging, version.pk))
    return version


def _insert_items(version: DatasetVersion, frozen: Frozen) -> None:
    # Items are read back from the staged file, so the rows hold exactly the bytes that were hashed.
    batch = []
    with open(frozen.staging / "data.jsonl", encoding="utf-8", newline="") as staged:
        for position, line in enumerate(staged):
            batch.append((version.pk, position, frozen.trace_ids[position], frozen.splits[position], line[:-1]))
            if len(batch) == INSERT_BATCH:
                _insert_batch(batch)
                batch = []
    if batch:
        _insert_batch(batch)


_ITEM_COLUMNS = ("dataset_id", "position", "trace_id", "split", "line")


def _insert_batch(rows: list[tuple]) -> None:
    """Insert item rows; COPY on PostgreSQL, where a multi-row INSERT spends most of its time having
    psycopg rewrite tens of thousands of parameters."""
    if connection.vendor != "postgresql":
        DatasetItem.objects.bulk_create([DatasetItem(**dict(zip(_ITEM_COLUMNS, row, strict=True))) for row in rows])
        return
    copy_rows(DatasetItem, _ITEM_COLUMNS, rows)


def _publish_or_undo(staging: Path, dataset_id: str) -> None:
    try:
        storage.publish(staging, dataset_id)
    except BaseException:
        # The rows are committed but their files cannot appear: remove the rows so that neither
        # exists without the other, then let the caller see the error.
        DatasetVersion.objects.filter(pk=dataset_id).delete()
        storage.discard(staging)
        raise


def dataset_version_delete(*, version: DatasetVersion) -> None:
    """Remove a version's rows and, once that is committed, its folder (superusers only, via admin)."""
    dataset_id = version.pk
    with transaction.atomic():
        version.delete()
        transaction.on_commit(lambda: storage.discard(storage.version_dir(dataset_id)))


def generated_traces_store(*, items: list[dict], approve_reason: str = "", user=None,
                           actor_label: str = "") -> dict:
    """Store generator output all-or-nothing; with `approve_reason`, approve what is still captured.

    Approval goes through `trace_review`, so every approved trace has a CurationEvent naming the
    reason. Traces a curator already moved elsewhere (rejected, needs review) are left alone.
    """
    created, duplicates = [], []
    with transaction.atomic():
        batch = settings.TRACE_BATCH_MAX_ITEMS  # trace_batch_create's own per-call limit
        for start in range(0, len(items), batch):
            result = trace_batch_create(items=items[start:start + batch], user=user)
            created += result["created"]
            duplicates += [{**d, "index": d["index"] + start} for d in result["duplicates"]]
        approved = 0
        if approve_reason:
            ids = created + [d["existing_id"] for d in duplicates]
            for trace in Trace.objects.filter(id__in=ids, status=TraceStatus.CAPTURED).order_by("created_at", "id"):
                trace_review(trace=trace, to_status=TraceStatus.APPROVED, reason=approve_reason, actor=user,
                             actor_label=actor_label)
                approved += 1
    return {"created": created, "duplicates": duplicates, "approved": approved,
            "trace_ids": _ids_in_input_order(len(items), created, duplicates)}


def _ids_in_input_order(n: int, created: list[str], duplicates: list[dict]) -> list[str]:
    # trace_batch_create lists new ids in input order, skipping the duplicates it reports by index.
    existing = {d["index"]: d["existing_id"] for d in duplicates}
    fresh = iter(created)
    return [existing[index] if index in existing else next(fresh) for index in range(n)]
