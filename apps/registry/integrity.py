"""A version of a Tunix run that holds adapters only means something over exactly the base weights and
tokenizer its run was trained on. Promotion records their sha256 (from the run's run_config.json); a
download or an evaluation of the version first checks that the weights the server would pair them with
are still those (training.base_weights), and is refused with a 409 naming what changed otherwise.

A version whose base weights are among its own files (gemma3-tiny keeps them in the run folder) is
self-contained: its blobs cannot change, so its download needs no check; its evaluation reads the run
folder and is checked like any other.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.conf import settings
from django.core.cache import cache

from apps.core.errors import Conflict
from apps.core.store import artifact_store
from training import base_weights

CACHE_SECONDS = 24 * 3600  # keyed by the files' size, mtime and inode: a replaced file is a new key


def base_record(run_config: dict, files: list[tuple[str, str, int]]) -> dict:
    """The ModelVersion fields describing a run's base weights (all empty for a builtin run), from its
    run_config.json."""
    sha256 = (run_config.get("base_weights") or {}).get("sha256") or ""
    if run_config.get("backend") != "tunix" or not sha256:
        return {}
    name = str(run_config.get("model_dir") or "")
    return {"base_weights_sha256": sha256, "tokenizer_sha256": (run_config.get("tokenizer") or {}).get("sha256", ""),
            "base_model_dir": name,
            "base_weights_included": any(path.startswith(f"{name}/") and path.endswith(".safetensors")
                                         for path, _, _ in files)}


def version_base_weights_check(version, *, for_download: bool) -> None:
    """Raise Conflict unless the base weights this version's adapters need are the recorded ones."""
    if not version.base_weights_sha256 or (for_download and version.base_weights_included):
        return
    if version.base_weights_included and artifact_store().shared:
        return  # the worker that evaluates it fetches the recorded files from the store: nothing here to check
    from apps.runs.storage import RunPaths

    out_dir = RunPaths.of(version.source_run).out
    name = version.base_model_dir
    try:
        folder = base_weights.locate(out_dir, name, settings.MODELS_DIR)
    except base_weights.BaseWeightsMissing:
        raise Conflict(f"{version} was trained over the base weights {name!r} (sha256 "
                       f"{version.base_weights_sha256[:12]}…), which are no longer in the server's models folder; "
                       "put them back to use this version.", code="base_weights_missing") from None
    if _cached_sha256(folder) != version.base_weights_sha256:
        raise Conflict(f"The base weights {name!r} changed since {version} was trained over them (sha256 "
                       f"{version.base_weights_sha256[:12]}… recorded): its adapters would be paired with other "
                       "weights. Put the original files back, or promote a run trained on these.",
                       code="base_weights_changed")


def _cached_sha256(folder: Path) -> str:
    """The folder's base-weights sha256, hashed once per content across the web processes (multi-GB files)."""
    stats = [(p.name, p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_ino)
             for p in sorted(folder.glob(base_weights.WEIGHT_FILES))]
    digest = hashlib.sha256(repr((str(folder.resolve()), stats)).encode("utf-8")).hexdigest()
    key = f"registry:base-weights:{digest}"
    value = cache.get(key)
    if value is None:
        value = base_weights.fingerprint(folder)["sha256"]
        cache.set(key, value, CACHE_SECONDS)
    return value
