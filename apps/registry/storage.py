"""Content-addressed storage for model versions: DATA_DIR/registry/blobs/<sha[:2]>/<sha256>.

A file is stored once whatever number of versions hold it (promoting the same checkpoint twice, or
two versions sharing a tokenizer, costs no second copy). Writes go to a temporary name and are
renamed, so a blob's path exists only with its complete content. A version's files are streamed out
again as a tar archive whose MODEL_MANIFEST.json lists each file's sha256 and size.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

from training.run_files import file_sha256

ARCHIVE_MANIFEST = "MODEL_MANIFEST.json"
CHUNK = 1 << 20


def blobs_root() -> Path:
    return Path(settings.DATA_DIR) / "registry" / "blobs"


def blob_path(sha256: str) -> Path:
    return blobs_root() / sha256[:2] / sha256


def store_blob(source: Path) -> tuple[str, int]:
    """Copy `source` into the store unless its content is there already; returns (sha256, size)."""
    digest, size = file_sha256(source), source.stat().st_size
    target = blob_path(digest)
    if target.exists() and target.stat().st_size == size:
        return digest, size
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{digest}.{uuid.uuid4().hex}.partial")
    shutil.copyfile(source, partial)
    os.replace(partial, target)
    return digest, size


def version_files(out_dir: Path, checkpoint_step: int) -> list[tuple[str, Path]]:
    """(relative path, file) pairs a version keeps from a run's output folder: the chosen checkpoint,
    the run config and manifest, metrics and any tokenizer files; not the other checkpoints."""
    chosen = f"checkpoints/{checkpoint_step}/"
    files = []
    for path in sorted(p for p in out_dir.rglob("*") if p.is_file()):
        name = path.relative_to(out_dir).as_posix()
        if name.endswith((".tmp", ".partial")) or name in ("predictions.jsonl", "eval_summary.json"):
            continue
        if name.startswith("checkpoints/") and not name.startswith(chosen):
            continue
        files.append((name, path))
    return files


def _member(name: str, size: int, mtime: float) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape")


def _padding(size: int) -> bytes:
    return b"\0" * ((tarfile.BLOCKSIZE - size % tarfile.BLOCKSIZE) % tarfile.BLOCKSIZE)


def archive_stream(files: list[tuple[str, str, int]], manifest: dict, prefix: str) -> Iterator[bytes]:
    """A tar archive of (path, sha256, size) blobs under `prefix/`, MODEL_MANIFEST.json first, written
    block by block as it is read: memory stays constant whatever the size of a checkpoint."""
    now = time.time()
    body = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
    yield _member(f"{prefix}/{ARCHIVE_MANIFEST}", len(body), now) + body + _padding(len(body))
    for path, sha256, size in files:
        yield _member(f"{prefix}/{path}", size, now)
        with open(blob_path(sha256), "rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk
        yield _padding(size)
    yield b"\0" * (2 * tarfile.BLOCKSIZE)  # end of archive
