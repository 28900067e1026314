"""A model version's files as a folder the model host can load: TUNIXRT_SERVING_DIR/<version id>/.

The files come from the registry's blobs (the version's own content-addressed copies, not its run's
folder, which may have been pruned or live on another host). The folder is built under a temporary
name and renamed into place complete, so a cut download or a concurrent request never sees half a model.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from django.conf import settings

from apps.core.errors import Conflict
from apps.core.store import artifact_store
from apps.registry.models import ModelVersion
from apps.registry.storage import NAMESPACE, blob_key, check_blobs


def version_folder(version: ModelVersion) -> Path:
    folder = Path(settings.SERVING_DIR) / str(version.pk)
    if (folder / "run_config.json").is_file():
        return folder
    files = [(f.path, f.blob_id, f.blob.size_bytes) for f in version.files.select_related("blob")]
    check_blobs(files)  # a missing blob is a 503 naming the file, before anything is written
    partial = folder.with_name(f"{folder.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        store = artifact_store()
        for path, sha256, _ in files:
            target = (partial / path).resolve()
            if not target.is_relative_to(partial.resolve()):  # a stored name never leaves the folder
                raise Conflict(f"Version file {path!r} points outside its folder.", code="unsafe_path")
            store.get(NAMESPACE, blob_key(sha256), target)
        try:
            partial.rename(folder)
        except OSError:
            if not (folder / "run_config.json").is_file():  # not a concurrent build that won the race
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder
