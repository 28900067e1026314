"""Dataset writes: building immutable versions, deleting them, storing generator output.

A build runs in four steps so that a version's rows and its files exist together or not at all:

1. select the trace ids in the database (`selectors.select_trace_ids`);
2. freeze: stream the traces in pages, writing `data.jsonl` into a private staging folder while
   hashing it and assigning splits;
3. store: one transaction inserts the version row and its items, read back from the staged file;
4. publish: inside that transaction, just before the commit, one `os.replace` moves the folder under
   its id. If anything fails the rows roll back and the folder is removed.

An id that already exists is answered from the stored rows before anything is frozen.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.core.authentication import author
from apps.core.db import copy_rows
from apps.core.errors import Conflict, Invalid
from apps.datasets import storage
from apps.datasets.content import CONTENT_HASH_METHOD, SPLIT_METHOD, ContentAccumulator, split_cuts, split_for
from apps.datasets.models import DatasetItem, DatasetVersion
from apps.datasets.selectors import dataset_version_stored, select_trace_ids
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
Progress = Callable[[int, int], None]


@dataclass
class Frozen:
    trace_ids: list[str]
    splits: list[str]
    split_counts: dict
    stats: dict
    content_hash: str
    staging: Path | None


@functools.lru_cache(maxsize=1)
def _git_sha() -> str | None:
    return git_sha()


def dataset_version_build(*, spec: BuildSpec, user=None, actor_label: str = "", selection: tuple | None = None,
                          progress: Progress | None = None, staging_tag: str = "") -> tuple[DatasetVersion, bool]:
    """Freeze the traces `spec` selects into an immutable version; returns (version, created).

    `user=None` is a system caller (management commands) that sees every trace. An id that already
    exists is answered from the stored version before anything is frozen: the same traces and splits
    return it with created=False, anything else is a Conflict (409). `selection` passes ids already
    selected with `select_trace_ids`; `progress(done, total)` hears about each page.
    """
    parent = _parent(spec)
    storage.sweep_stale_staging()
    trace_ids, selection_report = selection or select_trace_ids(user=user, spec=spec)
    existing = dataset_version_stored(spec.dataset_id)
    if existing is not None:
        return _same_or_conflict(existing, spec, trace_ids), False
    staging = storage.new_staging_dir(spec.dataset_id, tag=staging_tag)
    try:
        frozen = _freeze(trace_ids, spec, staging, progress or _no_progress)
        manifest = _manifest(spec, frozen, selection_report, created_by=_label(user, actor_label))
        storage.write_json(staging / "manifest.json", manifest)
        return _store(spec, frozen, manifest, parent=parent, user=user, progress=progress or _no_progress), True
    except IntegrityError:
        storage.discard(staging)
        existing = dataset_version_stored(spec.dataset_id)
        if existing is None:  # not our id: a selected trace was deleted before its item was stored
            raise Conflict("A selected trace was deleted during the build; build again.",
                           code="selection_changed") from None
        # A concurrent build of the same id committed first; answer as if we had come second.
        return _same_or_conflict(existing, spec, trace_ids, content_hash=frozen.content_hash), False
    except BaseException:
        storage.discard(staging)
        raise


def _no_progress(done: int, total: int) -> None:
    pass


def _parent(spec: BuildSpec) -> DatasetVersion | None:
    if not spec.parent_dataset_id:
        return None
    parent = DatasetVersion.objects.defer("manifest").filter(pk=spec.parent_dataset_id).first()
    if parent is None:
        raise Invalid({"parent_dataset_id": [f"No dataset version {spec.parent_dataset_id!r}."]})
    return parent


def _label(user, actor_label: str) -> str | None:
    if actor_label:
        return actor_label
    return user.get_username() if user is not None and user.is_authenticated else None


def _freeze(trace_ids: list, spec: BuildSpec, staging: Path | None, progress: Progress) -> Frozen:
    """Stream the traces in pages into `staging/data.jsonl` (or, with no staging folder, only hash them)."""
    content = ContentAccumulator(seed=spec.split_seed, ratios=spec.split)
    total = 2 * len(trace_ids)  # freezing, then storing, each trace
    with (open(staging / "data.jsonl", "w", encoding="utf-8", newline="") if staging
          else contextlib.nullcontext()) as out:
        for start in range(0, len(trace_ids), FREEZE_PAGE):
            page = trace_ids[start:start + FREEZE_PAGE]
            rows = {row[0]: row for row in Trace.objects.filter(id__in=page).values_list(*_TRACE_COLUMNS)}
            lines = []
            for trace_id in page:
                if trace_id not in rows:
                    raise Conflict("A selected trace was deleted during the build; build again.",
                                   code="selection_changed")
                _, trace_version, prompt, final_answer, steps, meta = rows[trace_id]
                trace = {"trace_version": trace_version, "prompt": prompt, "final_answer": final_answer,
                         "steps": steps, "meta": meta}
                lines.append(content.add(trace, str(trace_id))[0])
            if out is not None:
                out.write("".join(line + "\n" for line in lines))
            progress(start + len(page), total)
    return Frozen(trace_ids=[str(i) for i in trace_ids], splits=content.splits,
                  split_counts=content.split_counts(), stats=content.stats(),
                  content_hash=content.content_hash, staging=staging)


def _same_or_conflict(existing: DatasetVersion, spec: BuildSpec, trace_ids: list,
                      content_hash: str | None = None) -> DatasetVersion:
    """The stored version when the request would freeze exactly it, else a Conflict.

    Cheap checks first, from the stored items: the same trace ids in the same order, and the same
    splits (a pure function of trace id, seed and ratios). The content is re-hashed only when a
    selected trace changed since shortly before the version was built.
    """
    stored = list(DatasetItem.objects.filter(dataset=existing).order_by("position").values_list("trace_id", "split"))
    if [str(trace_id) for trace_id, _ in stored] != [str(i) for i in trace_ids]:
        raise _exists_conflict(existing, "other traces", requested_hash=content_hash)
    cuts = split_cuts(spec.split)
    if [split for _, split in stored] != [split_for(str(i), spec.split_seed, cuts) for i in trace_ids]:
        raise _exists_conflict(existing, "other split assignments", requested_hash=content_hash)
    if content_hash is None:
        content_hash = _current_content_hash(existing, spec, trace_ids)
    if content_hash != existing.content_hash:
        raise _exists_conflict(existing, "other content", requested_hash=content_hash)
    return existing


# A trace edited this long before a version's created_at may still have been read in its old form
# (the edit's timestamp is taken before its transaction commits); such traces are re-hashed too.
EDIT_CLOCK_MARGIN = timedelta(minutes=5)


def _current_content_hash(existing: DatasetVersion, spec: BuildSpec, trace_ids: list) -> str:
    changed = Trace.objects.filter(dataset_items__dataset=existing,
                                   updated_at__gte=existing.created_at - EDIT_CLOCK_MARGIN).exists()
    if not changed:
        return existing.content_hash
    return _freeze(trace_ids, spec, None, _no_progress).content_hash


def _exists_conflict(existing: DatasetVersion, what: str, *, requested_hash: str | None) -> Conflict:
    extra = {"dataset_id": existing.pk, "existing_content_hash": existing.content_hash, "differs_in": what}
    if requested_hash is not None:
        extra["requested_content_hash"] = requested_hash
    return Conflict(
        f"Dataset {existing.pk!r} already exists with {what}; versions are immutable, so build a new version.",
        code="dataset_exists", extra=extra,
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


def _store(spec: BuildSpec, frozen: Frozen, manifest: dict, *, parent, user, progress: Progress) -> DatasetVersion:
    """Insert the rows and publish the folder in one transaction.

    The folder is published before the commit: a process killed in between leaves a folder without a
    row, which nothing reads and the next publish replaces; never a row without its files.
    """
    counts = frozen.split_counts
    try:
        with transaction.atomic():
            version = DatasetVersion.objects.create(
                id=spec.dataset_id, name=spec.name, version=spec.version, content_hash=frozen.content_hash,
                selection_strategy=spec.strategy, trace_count=len(frozen.trace_ids), train_count=counts["train"],
                val_count=counts["val"], test_count=counts["test"], session_id=spec.session_id, parent=parent,
                created_by=author(user), stats=frozen.stats,
                manifest=manifest,
            )
            _insert_items(version, frozen, progress)
            storage.publish(frozen.staging, version.pk)
    except BaseException:
        if not DatasetVersion.objects.filter(pk=spec.dataset_id).exists():
            storage.discard_unreferenced(spec.dataset_id, frozen.staging)
        raise
    return version


def _insert_items(version: DatasetVersion, frozen: Frozen, progress: Progress) -> None:
    # Items are read back from the staged file, so the rows hold exactly the bytes that were hashed.
    batch, n = [], len(frozen.trace_ids)
    with open(frozen.staging / "data.jsonl", encoding="utf-8", newline="") as staged:
        for position, line in enumerate(staged):
            batch.append((version.pk, position, frozen.trace_ids[position], frozen.splits[position], line[:-1]))
            if len(batch) == INSERT_BATCH:
                _insert_batch(batch)
                progress(n + position + 1, 2 * n)
                batch = []
    if batch:
        _insert_batch(batch)
    progress(2 * n, 2 * n)


_ITEM_COLUMNS = ("dataset_id", "position", "trace_id", "split", "line")


def _insert_batch(rows: list[tuple]) -> None:
    """Insert item rows; COPY on PostgreSQL, where a multi-row INSERT spends most of its time having
    psycopg rewrite tens of thousands of parameters."""
    if connection.vendor != "postgresql":
        DatasetItem.objects.bulk_create([DatasetItem(**dict(zip(_ITEM_COLUMNS, row, strict=True))) for row in rows])
        return
    copy_rows(DatasetItem, _ITEM_COLUMNS, rows)


def dataset_version_delete(*, version: DatasetVersion) -> None:
    """Remove a version's rows and, once that is committed, its folder (superusers only, via admin)."""
    dataset_id = version.pk
    with transaction.atomic():
        version.delete()
        transaction.on_commit(lambda: storage.discard_published(dataset_id))


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
            ids = created + [d["existing_id"] for d in duplicates if d["existing_id"]]
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
