"""The base weights a Tunix run fine-tunes: their fingerprint, the portable name a run records for their
folder, and finding them again (SPEC §4: a Tunix run records the sha256 of its base weights and tokenizer).

A LoRA checkpoint holds only adapters, so it means something only over the exact weights it was trained on.
The run records `base_weights` = {"sha256", "files": [{"name", "sha256", "size_bytes"}]} (the sha256 is
taken over the lines "<file sha256>  <file name>" of the sorted *.safetensors files, like a `sha256sum`
listing) and loading the run again refuses other weights (`BaseWeightsChanged`) instead of evaluating them.

Where the folder is recorded never depends on the machine: relative to the run folder when the weights
live inside it (gemma3-tiny writes its random weights there), else relative to the models folder
(`TUNIXRT_MODELS_DIR`: the server's models folder, `/kaggle/input` in the notebook), else the folder's own
name. No absolute server or Kaggle path reaches run_config.json or the manifest.

Pure Python: the registry checks versions with it in the web process, which never imports JAX.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from training.paths import folder_problem, resolve_inside
from training.run_files import file_sha256

MODELS_DIR_ENV = "TUNIXRT_MODELS_DIR"
WEIGHT_FILES = "*.safetensors"

# (path, size, mtime_ns, inode) -> sha256: a long-lived process hashes each multi-GB file once.
_DIGESTS: dict[tuple, str] = {}


class BaseWeightsError(ValueError):
    """The base weights a run names cannot be used; the message says why and what to do."""


class BaseWeightsMissing(BaseWeightsError, FileNotFoundError):
    pass


class BaseWeightsChanged(BaseWeightsError):
    pass


def _file_digest(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if key not in _DIGESTS:
        _DIGESTS[key] = file_sha256(path)
    return _DIGESTS[key]


def fingerprint(model_dir: str | Path) -> dict:
    """{"sha256", "files"} of the folder's weight files (see the module docstring)."""
    root = Path(model_dir)
    files = [{"name": path.name, "sha256": _file_digest(path), "size_bytes": path.stat().st_size}
             for path in sorted(root.glob(WEIGHT_FILES))]
    listing = "".join(f"{entry['sha256']}  {entry['name']}\n" for entry in files)
    return {"sha256": hashlib.sha256(listing.encode("utf-8")).hexdigest(), "files": files}


def models_root() -> Path | None:
    value = os.environ.get(MODELS_DIR_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else None


def portable_name(model_dir: str | Path, out_dir: str | Path) -> str:
    """How a run records where its base weights are: never an absolute path (module docstring)."""
    resolved = Path(model_dir).expanduser().resolve()
    for root in (Path(out_dir).resolve(), models_root()):
        if root is not None and resolved.is_relative_to(root) and resolved != root:
            return resolved.relative_to(root).as_posix()
    return resolved.name


def locate(out_dir: str | Path, recorded: str, models_dir: str | Path | None = None) -> Path:
    """The folder a run's recorded `model_dir` stands for: inside the run folder, else inside the models
    folder (`models_dir`, else TUNIXRT_MODELS_DIR). An absolute path (runs recorded before names were
    portable) is used as it is unless `models_dir` confines the search."""
    if not isinstance(recorded, str) or not recorded:
        raise BaseWeightsMissing("run_config.json names no base weights folder (model_dir).")
    if Path(recorded).is_absolute():
        if models_dir is None and Path(recorded).is_dir():
            return Path(recorded)
        raise BaseWeightsMissing(f"run_config.json names base weights by an absolute path ({Path(recorded).name!r} "
                                 "at a path of the machine that trained it); only folders inside the run folder "
                                 "or the models folder are loaded.")
    roots = [("the run folder", Path(out_dir))]
    models = Path(models_dir).resolve() if models_dir is not None else models_root()
    if models is not None:
        roots.append(("the models folder", models))
    for what, root in roots:
        if folder_problem(root, recorded, what=what) is None:
            return resolve_inside(root, recorded)
    where = " or ".join(what for what, _ in roots)
    hint = "" if models is not None else f" (set {MODELS_DIR_ENV} to the folder that holds it)"
    raise BaseWeightsMissing(f"The base weights {recorded!r} this run was trained on are not in {where}{hint}.")


def verify(model_dir: Path, recorded: dict | None, name: str) -> None:
    """Refuse weights other than the ones the run recorded (runs recorded before hashing pass unchecked)."""
    if not recorded or not recorded.get("sha256"):
        return
    now = fingerprint(model_dir)
    if now["sha256"] != recorded["sha256"]:
        raise BaseWeightsChanged(
            f"The base weights in {name!r} changed since this run was trained on them (sha256 "
            f"{recorded['sha256'][:12]}… recorded, {now['sha256'][:12]}… now): its adapters would be scored over "
            "other weights. Put the original files back, or train a new run on these.")
