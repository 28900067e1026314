"""Content-addressed storage for model versions: the artifact store's `registry` namespace,
`blobs/<sha[:2]>/<sha256>` (DATA_DIR/registry/blobs with the default store).

A file is stored once whatever number of versions hold it (promoting the same checkpoint twice, or
two versions sharing a tokenizer, costs no second copy). A blob is copied from the run's recorded
artifact inside the store (server-side on an object store) and appears only complete. A version's
files are streamed out again as a tar archive whose MODEL_MANIFEST.json lists each file's sha256 and
size; every blob is checked before the first byte, and the archive's length is sent up front, so a
missing blob is an error status and a cut connection shows as one.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

from apps.core.store import artifact_store, read_chunks
from apps.runs.models import RunArtifact, TrainingRun
from apps.runs.storage import NAMESPACE as RUNS
from apps.runs.storage import artifact_key, checkpoint_step_of

NAMESPACE = "registry"
ARCHIVE_MANIFEST = "MODEL_MANIFEST.json"
UNVERSIONED = ("predictions.jsonl", "eval_summary.json")  # an evaluation's outputs, not the model's


def blobs_root() -> Path:
    """The blobs' folder with the default store (what the tests look into)."""
    return Path(settings.DATA_DIR) / "registry" / "blobs"


def blob_key(sha256: str) -> str:
    return f"blobs/{sha256[:2]}/{sha256}"


def version_artifacts(run: TrainingRun, checkpoint_step: int) -> list[RunArtifact]:
    """The recorded artifacts a version keeps from a run: the chosen checkpoint, the run config and
    manifest, metrics and any tokenizer files; not the other checkpoints."""
    return [artifact for artifact in RunArtifact.objects.filter(run=run).order_by("name")
            if artifact.name not in UNVERSIONED and checkpoint_step_of(artifact.name) in (None, checkpoint_step)]


def store_blob(run: TrainingRun, artifact: RunArtifact) -> tuple[str, int]:
    """Copy a recorded artifact into the blobs unless its content is there already; returns (sha256, size)."""
    store, key = artifact_store(), blob_key(artifact.sha256)
    if store.size(NAMESPACE, key) != artifact.size_bytes:
        source = artifact_key(run, artifact.name)
        store.require(RUNS, source, artifact.size_bytes, what=f"artifact {artifact.name!r} of run {run.pk}")
        store.copy((RUNS, source), (NAMESPACE, key))
    return artifact.sha256, artifact.size_bytes


def check_blobs(files: list[tuple[str, str, int]]) -> None:
    """Every blob of a version is in the store at its size (else a 503 naming the file)."""
    store = artifact_store()
    for path, sha256, size in files:
        store.require(NAMESPACE, blob_key(sha256), size, what=f"the blob of {path!r} ({sha256[:12]}…)")


def _member(name: str, size: int, mtime: float) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape")


def _padding(size: int) -> bytes:
    return b"\0" * ((tarfile.BLOCKSIZE - size % tarfile.BLOCKSIZE) % tarfile.BLOCKSIZE)


class VersionArchive:
    """A tar archive of (path, sha256, size) blobs under `prefix/`, MODEL_MANIFEST.json first, written
    block by block as it is read: memory stays constant whatever the size of a checkpoint. Its length is
    known before the first byte; `mtime` (the version's creation) makes two downloads the same bytes."""

    def __init__(self, files: list[tuple[str, str, int]], manifest: dict, prefix: str, mtime: float):
        self.files, self.prefix, self.mtime = files, prefix, mtime
        self.manifest = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
        self.headers = [_member(f"{prefix}/{path}", size, mtime) for path, _, size in files]

    def __len__(self) -> int:
        manifest = len(self._manifest_header()) + len(self.manifest) + len(_padding(len(self.manifest)))
        members = sum(len(header) + size + len(_padding(size))
                      for header, (_, _, size) in zip(self.headers, self.files, strict=True))
        return manifest + members + 2 * tarfile.BLOCKSIZE

    def _manifest_header(self) -> bytes:
        return _member(f"{self.prefix}/{ARCHIVE_MANIFEST}", len(self.manifest), self.mtime)

    def __iter__(self) -> Iterator[bytes]:
        yield self._manifest_header() + self.manifest + _padding(len(self.manifest))
        store = artifact_store()
        for header, (_, sha256, size) in zip(self.headers, self.files, strict=True):
            yield header
            yield from read_chunks(store.open(NAMESPACE, blob_key(sha256)))
            yield _padding(size)
        yield b"\0" * (2 * tarfile.BLOCKSIZE)  # end of archive
