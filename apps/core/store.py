"""The artifact store: every file more than one host needs, in one place the web and all workers reach.

Three namespaces, each a folder of the store: `runs` (each run's output folder: checkpoints, manifest,
metrics, tokenizer, config; `<run folder>/out/<artifact name>`), `registry` (the model versions'
content-addressed blobs, `blobs/<sha[:2]>/<sha256>`) and `datasets` (each frozen version's files,
`<dataset id>/<file>`).

With `ARTIFACT_STORE_URL` unset, the namespaces are this host's own folders (RUNS_DIR, DATA_DIR/registry,
DATASETS_DIR): nothing is copied, the one-machine install works as it always did. With a URL they live
under it: a folder every host mounts (`/mnt/tunixrt` or `file:///mnt/tunixrt`: NFS, GCS Fuse) or an
S3-compatible bucket (`s3://bucket/prefix`: AWS, MinIO, Cloudflare R2, GCS through its XML API), with the
credentials and endpoint in the standard AWS variables. A worker then trains on local scratch and
uploads what it writes; everything that reads a run's files fetches the ones it lacks.

Built on fsspec (and s3fs for S3): one interface to a local folder and an object store, that the
workers' file syncs and the registry's server-side copies use alike, and already in the dependency tree
(orbax and datasets use it). Django's storage API (django-storages) would serve only the web's side.

Writes are atomic: a folder store writes a temporary name and renames it, an object store's single or
multipart upload appears only once complete. Keys are built by the server from names it recorded and
must stay inside their namespace; an unreachable store is `Unavailable` (503), never a 500.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import fsspec
from django.conf import settings
from fsspec.implementations.local import LocalFileSystem

from apps.core.errors import Unavailable

logger = logging.getLogger(__name__)

NAMESPACES = ("runs", "registry", "datasets")
STORE_UNAVAILABLE = "store_unavailable"
ARTIFACT_MISSING = "artifact_missing"
PARTIAL = ".partial"


def _key_parts(key: str) -> str:
    path = PurePosixPath(key)
    if not key or path.is_absolute() or any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"{key!r} is not a key inside the store")
    return path.as_posix()


def _store_errors() -> tuple[type[BaseException], ...]:
    """What a store that went away raises: OSError from any filesystem, and the S3 client's own errors
    when it is installed (a refused connection surfaces as botocore's or aiohttp's, not an OSError)."""
    errors: list[type[BaseException]] = [OSError]
    with contextlib.suppress(ImportError):
        import botocore.exceptions

        errors += [botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError]
    with contextlib.suppress(ImportError):
        import aiohttp

        errors.append(aiohttp.ClientError)
    return tuple(errors)


STORE_ERRORS = _store_errors()


@contextlib.contextmanager
def _reachable(what: str):
    """Store errors other than a missing file (a network or permission failure) become a 503."""
    try:
        yield
    except FileNotFoundError:
        raise
    except STORE_ERRORS as exc:
        # The client hears what failed, not where the store lives; the log keeps the whole error.
        logger.warning("artifact store: could not %s: %r", what, exc)
        raise Unavailable(f"The artifact store could not {what} ({type(exc).__name__}); retry later.",
                          code=STORE_UNAVAILABLE) from exc


@dataclass(frozen=True)
class ArtifactStore:
    fs: fsspec.AbstractFileSystem
    roots: dict
    shared: bool  # False: the roots are this host's own data folders, so there is nothing to copy

    @property
    def local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def path(self, namespace: str, key: str) -> str:
        root = self.roots[namespace]
        path = f"{root}/{_key_parts(key)}"
        if self.local and not Path(path).resolve().is_relative_to(Path(root).resolve()):
            raise FileNotFoundError(f"{namespace}/{key} leads out of the store")  # a link: as if absent
        return path

    def local_path(self, namespace: str, key: str) -> Path | None:
        """The file of a key on this host, when the store is a folder (None for an object store)."""
        return Path(self.path(namespace, key)) if self.local else None

    def is_here(self, namespace: str, key: str, source: Path) -> bool:
        """Whether `source` already is the key's file (the default store: scratch and store are one)."""
        target = self.local_path(namespace, key)
        return target is not None and target.resolve() == Path(source).resolve()

    def size(self, namespace: str, key: str) -> int | None:
        """The stored size of a key, None when it is not there."""
        with _reachable(f"look up {namespace}/{key}"):
            try:
                info = self.fs.info(self.path(namespace, key))
            except FileNotFoundError:
                return None
        return int(info["size"]) if info.get("type") != "directory" else None

    def require(self, namespace: str, key: str, size: int, *, what: str) -> None:
        """Raise a 503 naming `what` unless the store holds the key at exactly `size` bytes: checked
        before a download's first byte, so a lost file is an error status, never a body cut short."""
        found = self.size(namespace, key)
        if found != size:
            state = "does not hold" if found is None else f"holds {found} of the {size} bytes of"
            raise Unavailable(f"The artifact store {state} {what}; it was lost behind the server's back and "
                              "must be restored from a backup.", code=ARTIFACT_MISSING)

    def put(self, namespace: str, key: str, source: Path) -> None:
        """Upload one file; the key appears only with its complete content."""
        if self.is_here(namespace, key, source):
            return
        target = self.path(namespace, key)
        with _reachable(f"write {namespace}/{key}"):
            if self.local:
                self._atomic_local(target, lambda partial: self.fs.put_file(str(source), partial))
            else:
                self.fs.put_file(str(source), target)

    def get(self, namespace: str, key: str, target: Path) -> None:
        """Download one file to `target` (a temporary name renamed, so a cut download leaves nothing)."""
        if self.is_here(namespace, key, target):
            return
        source = self.path(namespace, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}{PARTIAL}")
        try:
            with _reachable(f"read {namespace}/{key}"):
                self.fs.get_file(source, str(partial))
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)

    def copy(self, source: tuple[str, str], target: tuple[str, str]) -> None:
        """Copy a key to another inside the store (server-side on an object store: no download)."""
        source_path, target_path = self.path(*source), self.path(*target)
        with _reachable(f"copy {source[0]}/{source[1]}"):
            if self.local:
                self._atomic_local(target_path, lambda partial: self.fs.cp_file(source_path, partial))
            else:
                self.fs.cp_file(source_path, target_path)

    def open(self, namespace: str, key: str) -> BinaryIO:
        path = self.path(namespace, key)
        with _reachable(f"read {namespace}/{key}"):
            return self.fs.open(path, "rb")

    def listing(self, namespace: str, prefix: str) -> dict[str, int]:
        """{key relative to `prefix`: size} of every file under a prefix (empty when there is none)."""
        root = self.path(namespace, prefix)
        with _reachable(f"list {namespace}/{prefix}"):
            try:
                found = self.fs.find(root, detail=True)
            except FileNotFoundError:
                return {}
        return {PurePosixPath(name).relative_to(root).as_posix(): int(info["size"])
                for name, info in found.items() if info.get("type") != "directory" and not name.endswith(PARTIAL)}

    def delete(self, namespace: str, keys: list[str]) -> None:
        paths = [self.path(namespace, key) for key in keys]
        with _reachable(f"delete from {namespace}"):
            for path in paths:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm_file(path)

    def delete_tree(self, namespace: str, prefix: str) -> None:
        path = self.path(namespace, prefix)
        with _reachable(f"delete {namespace}/{prefix}"), contextlib.suppress(FileNotFoundError):
            self.fs.rm(path, recursive=True)

    def _atomic_local(self, target: str, write) -> None:
        partial = f"{target}.{uuid.uuid4().hex[:8]}{PARTIAL}"
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        try:
            write(partial)
            os.replace(partial, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)


def artifact_store() -> ArtifactStore:
    """The store the settings name (read at each call: tests and commands change the settings)."""
    url = settings.ARTIFACT_STORE_URL
    if not url:
        roots = {"runs": str(Path(settings.RUNS_DIR).resolve()), "datasets": str(Path(settings.DATASETS_DIR).resolve()),
                 "registry": str((Path(settings.DATA_DIR) / "registry").resolve())}
        return ArtifactStore(LocalFileSystem(), roots, shared=False)
    fs, root = fsspec.core.url_to_fs(url)
    root = root.rstrip("/")
    return ArtifactStore(fs, {namespace: f"{root}/{namespace}" for namespace in NAMESPACES}, shared=True)


def read_chunks(handle: BinaryIO, size: int = 1 << 20) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(size):
            yield chunk
