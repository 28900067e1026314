"""On-disk dataset artifacts under settings.DATASETS_DIR, and their copies in the artifact store.

A version is written into a private staging folder (`.building/<id>-<random>`) and appears under
its id only by one atomic `os.replace`, so a reader never sees a half-written version and a failed
build leaves nothing behind under the id. With a shared store (apps.core.store, namespace `datasets`)
its files are uploaded as it is published, so the version's files outlive the host that built it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path

from django.conf import settings

from apps.core.store import artifact_store
from training.run_files import file_sha256
from training.trace_schema import canonical_json

NAMESPACE = "datasets"
STAGING = ".building"
STALE_STAGING_AGE_S = 24 * 3600


def datasets_root() -> Path:
    return Path(settings.DATASETS_DIR)


def version_dir(dataset_id: str) -> Path:
    return datasets_root() / dataset_id


def new_staging_dir(dataset_id: str, tag: str = "") -> Path:
    """A private folder for one build; `tag` (a job's id) lets a retry find what a killed attempt left."""
    name = f"{dataset_id}-{tag}-{uuid.uuid4().hex[:12]}" if tag else f"{dataset_id}-{uuid.uuid4().hex[:12]}"
    path = datasets_root() / STAGING / name
    path.mkdir(parents=True)
    return path


def discard_tagged_staging(dataset_id: str, tag: str) -> int:
    """Remove the staging folders earlier attempts of the job `tag` left behind (a killed worker)."""
    root = datasets_root() / STAGING
    if not tag or not root.is_dir():
        return 0
    leftovers = list(root.glob(f"{dataset_id}-{tag}-*"))
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)
    return len(leftovers)


def write_json(path: Path, value: dict) -> None:
    """Pretty, key-sorted JSON: stable bytes for the same value, readable in a diff."""
    path.write_text(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def publish(staging: Path, dataset_id: str) -> Path:
    """Move a finished staging folder to its final place, replacing any orphaned leftover there."""
    final = version_dir(dataset_id)
    if final.exists():
        # Only reachable when a version's row was deleted but its folder survived.
        leftover = datasets_root() / STAGING / f"replaced-{dataset_id}-{uuid.uuid4().hex[:12]}"
        os.replace(final, leftover)
        shutil.rmtree(leftover, ignore_errors=True)
    os.replace(staging, final)
    store = artifact_store()
    if store.shared:
        for path in sorted(p for p in final.iterdir() if p.is_file()):
            store.put(NAMESPACE, f"{dataset_id}/{path.name}", path)
    return final


def discard(path: Path | None) -> None:
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


def discard_published(dataset_id: str) -> None:
    """Remove a version's folder and its copies in a shared store."""
    discard(version_dir(dataset_id))
    store = artifact_store()
    if store.shared:
        store.delete_tree(NAMESPACE, dataset_id)


def discard_unreferenced(dataset_id: str, staging: Path) -> None:
    """After a store that did not commit (and left no row): remove its staging folder, or the folder
    it had already published in its place."""
    if staging.exists():
        discard(staging)
    else:
        discard_published(dataset_id)


def sweep_stale_staging(now: float | None = None) -> int:
    """Remove staging folders of builds that died long ago (e.g. a killed process)."""
    root = datasets_root() / STAGING
    if not root.is_dir():
        return 0
    cutoff = (now or time.time()) - STALE_STAGING_AGE_S
    removed = 0
    for child in root.iterdir():
        if child.stat().st_mtime < cutoff:
            shutil.rmtree(child, ignore_errors=True)
            removed += 1
    return removed


def write_eval_set(*, dataset_id: str, items: list[dict], generator_manifest: dict) -> tuple[Path, str]:
    """Write `<id>/items.jsonl` + `manifest.json`; returns (folder, "created" | "unchanged").

    Eval sets are immutable: a folder that already holds other content is an error, never
    overwritten, because scores measured on the old items would silently stop being comparable.
    """
    data = "".join(canonical_json(item) + "\n" for item in items).encode("utf-8")
    content_hash = hashlib.sha256(data).hexdigest()
    final = version_dir(dataset_id)
    existing = final / "manifest.json"
    if existing.exists():
        stored = json.loads(existing.read_text(encoding="utf-8")).get("content_hash")
        if stored == content_hash and file_sha256(final / "items.jsonl") == content_hash:
            return final, "unchanged"
        raise FileExistsError(
            f"{final} does not hold exactly eval set content {content_hash} (its manifest says {stored}); "
            "eval sets are immutable, so publish changed items under a new version instead."
        )
    staging = new_staging_dir(dataset_id)
    try:
        (staging / "items.jsonl").write_bytes(data)
        write_json(staging / "manifest.json", _eval_manifest(dataset_id, items, generator_manifest, content_hash))
        publish(staging, dataset_id)
    except BaseException:
        discard(staging)
        raise
    return final, "created"


def _eval_manifest(dataset_id: str, items: list[dict], generator_manifest: dict, content_hash: str) -> dict:
    # No timestamps: regenerating the same eval set must give the same bytes (it is committed).
    return {
        **generator_manifest,
        "dataset_id": dataset_id,
        "kind": "eval_set",
        "item_count": len(items),
        "item_fields": ["id", "prompt", "expected_answer", "category", "difficulty", "section"],
        "files": {"items": "items.jsonl"},
        "content_hash": content_hash,
        "content_hash_method": "sha256 of items.jsonl: canonical JSON of each item in order, each + '\\n'",
    }
