"""A run's files: its scratch folder on the host that trains it (RUNS_DIR/<run folder>: the inputs the
launcher writes and the trainer's output folder) and its outputs in the artifact store
(apps.core.store, namespace `runs`, `<run folder>/out/<artifact name>`).

An artifact row is written only after its bytes are in the store, so the rows are what the store is
known to hold: a download, a promotion, an evaluation or a resume on another host fetches by them. With
the default store the scratch folder is the store and nothing is copied.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from apps.core.lookups import as_int
from apps.core.store import PARTIAL, artifact_store
from apps.runs.models import RunArtifact, TrainingRun
from training.run_files import MANIFEST_FILE, RUN_CONFIG_FILE, file_sha256

NAMESPACE = "runs"
UNSTORED_SUFFIXES = (".tmp", PARTIAL)
INIT_FILES = (RUN_CONFIG_FILE,)  # besides the tokenizer and the checkpoint: what loading a run's weights reads
# A tunix run without a models-folder model_dir (gemma3-tiny's random weights) keeps its base weights here.
INIT_FOLDERS = ("base_model/",)


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @classmethod
    def of(cls, run: TrainingRun) -> RunPaths:
        return cls(Path(settings.RUNS_DIR) / run.folder_name)

    @property
    def inputs(self) -> Path:
        return self.root / "input"

    @property
    def train_data(self) -> Path:
        return self.inputs / "train.tunix_sft.jsonl"

    @property
    def eval_data(self) -> Path:
        return self.inputs / "val.tunix_sft.jsonl"

    @property
    def config(self) -> Path:
        return self.inputs / "config.yaml"

    @property
    def prompts(self) -> Path:
        """GRPO: the split's prompts with their expected answers."""
        return self.inputs / "prompts.grpo_prompt.jsonl"

    @property
    def grpo_config(self) -> Path:
        return self.inputs / "grpo_config.json"

    @property
    def init(self) -> Path:
        """The parent run's files a run starts from (its config, tokenizer and one checkpoint)."""
        return self.root / "init"

    @property
    def cancel_file(self) -> Path:
        return self.root / "CANCEL"

    @property
    def out(self) -> Path:
        return self.root / "out"


def artifact_kind(name: str) -> str:
    if name.startswith("checkpoints/"):
        return "checkpoint"
    if name.startswith("tokenizer") or name.endswith(".model"):
        return "tokenizer"
    return {"metrics.jsonl": "metrics", MANIFEST_FILE: "manifest", "run_config.json": "config"}.get(name, "other")


def artifact_key(run: TrainingRun, name: str) -> str:
    return f"{run.folder_name}/out/{name}"


def checkpoint_step_of(name: str) -> int | None:
    """The step of a file inside `checkpoints/<step>/` (ASCII digits only: an imported archive may hold
    any folder name there), None for any other file."""
    parts = name.split("/")
    return as_int(parts[1]) if len(parts) > 2 and parts[0] == "checkpoints" else None


def _output_files(out: Path) -> dict[str, Path]:
    """The files of an output folder that are artifacts: not temporary names, not a save in progress."""
    if not out.is_dir():
        return {}
    files = {}
    for path in sorted(out.rglob("*")):
        name = path.relative_to(out).as_posix()
        if path.is_file() and not name.endswith(UNSTORED_SUFFIXES) and "orbax-checkpoint-tmp" not in name:
            files[name] = path
    return files


@dataclass
class Uploaded:
    """What one sync left in the store: the rows to record, and the names that are gone from the folder."""
    rows: list[RunArtifact]
    gone: list[str]


@dataclass
class OutputSync:
    """Uploads a run's output folder to the store, each file once per content: checkpoints as they are
    written, the growing files (metrics, manifest) as snapshots whose hash is that of the bytes sent.
    Remembers hashes by (size, mtime), so a sync every checkpoint hashes only what changed."""

    run: TrainingRun
    out: Path
    stored: dict = field(default_factory=dict)  # name -> sha256 the store holds
    hashes: dict = field(default_factory=dict)  # name -> ((size, mtime_ns), sha256)

    def __post_init__(self):
        self.stored = dict(RunArtifact.objects.filter(run=self.run).values_list("name", "sha256"))

    def upload(self) -> Uploaded:
        store, rows = artifact_store(), []
        files = _output_files(self.out)
        for name, path in files.items():
            try:
                row = self._upload_one(store, name, path)
            except FileNotFoundError:  # rotated out (an old checkpoint) while we looked
                continue
            rows.append(row)
        return Uploaded(rows, [name for name in self.stored if name not in {row.name for row in rows}])

    def _upload_one(self, store, name: str, path: Path) -> RunArtifact:
        key = artifact_key(self.run, name)
        if store.is_here(NAMESPACE, key, path) or checkpoint_step_of(name) is not None:
            size, digest = self._hash(name, path)  # not rewritten once saved: upload the file itself
            if self.stored.get(name) != digest:
                store.put(NAMESPACE, key, path)
        else:
            snapshot = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}{PARTIAL}")
            try:
                shutil.copyfile(path, snapshot)
                size, digest = snapshot.stat().st_size, file_sha256(snapshot)
                if self.stored.get(name) != digest:
                    store.put(NAMESPACE, key, snapshot)
            finally:
                snapshot.unlink(missing_ok=True)
        self.stored[name] = digest
        return RunArtifact(run=self.run, name=name, kind=artifact_kind(name), size_bytes=size, sha256=digest)

    def _hash(self, name: str, path: Path) -> tuple[int, str]:
        stat = path.stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
        known = self.hashes.get(name)
        if known is None or known[0] != stamp:
            known = self.hashes[name] = (stamp, file_sha256(path))
        return stat.st_size, known[1]


def record_uploaded(run: TrainingRun, uploaded: Uploaded) -> None:
    """The rows of what is in the store now (callers fence this by the job's attempt)."""
    RunArtifact.objects.filter(run=run, name__in=uploaded.gone).delete()
    RunArtifact.objects.bulk_create(uploaded.rows, batch_size=500, update_conflicts=True,
                                    unique_fields=["run", "name"], update_fields=["kind", "size_bytes", "sha256"])


def prune_store(run: TrainingRun, uploaded: Uploaded) -> None:
    """Remove from the store what the folder no longer has (checkpoints the trainer rotated out): after
    their rows are gone, so no row ever names a missing key."""
    store = artifact_store()
    if store.shared and uploaded.gone:
        store.delete(NAMESPACE, [artifact_key(run, name) for name in uploaded.gone])


def record_artifacts(run: TrainingRun, paths: RunPaths) -> int:
    """Upload the output folder's files, record one row per file (size, sha256), and drop the rows and
    stored copies of files that are gone; returns how many are recorded."""
    uploaded = OutputSync(run, paths.out).upload()
    record_uploaded(run, uploaded)
    prune_store(run, uploaded)
    return len(uploaded.rows)


def discard_outputs(run: TrainingRun) -> None:
    """Remove a run's scratch folder here and its outputs in a shared store (a run whose rows are gone)."""
    shutil.rmtree(RunPaths.of(run).root, ignore_errors=True)
    store = artifact_store()
    if store.shared:
        store.delete_tree(NAMESPACE, f"{run.folder_name}/out")


def read_stored_json(run: TrainingRun, name: str) -> dict:
    """A recorded JSON artifact of the run (run_config.json, the manifest) read from the store; {} when the
    run has none."""
    artifact = RunArtifact.objects.filter(run=run, name=name).first()
    if artifact is None:
        return {}
    with artifact_open(run, artifact) as handle:
        try:
            value = json.loads(handle.read().decode("utf-8"))
        except ValueError:  # UnicodeDecodeError included: what a file that is not JSON means here
            return {}
    return value if isinstance(value, dict) else {}


def read_manifest(paths: RunPaths) -> dict | None:
    path = paths.out / MANIFEST_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


# --- reading from the store ----------------------------------------------------------------------

def artifact_open(run: TrainingRun, artifact: RunArtifact) -> BinaryIO:
    """The stored bytes of a recorded artifact, checked before a byte is sent: a file the store lost, or
    holds at another size, is a 503 naming it, never a response cut short."""
    store, key = artifact_store(), artifact_key(run, artifact.name)
    store.require(NAMESPACE, key, artifact.size_bytes, what=f"artifact {artifact.name!r} of run {run.pk}")
    return store.open(NAMESPACE, key)


def stage_outputs(run: TrainingRun, out: Path, *, step: int | None = None) -> int:
    """Fetch into `out` the recorded outputs this host lacks: every file but the checkpoints, and
    checkpoint `step` (the latest recorded when None) unless the folder has it, or a later one when
    resuming. A checkpoint lands under its step only once every file is here. Returns the files fetched."""
    store = artifact_store()
    if not store.shared:
        return 0
    names = list(RunArtifact.objects.filter(run=run).values_list("name", flat=True))
    steps = sorted({s for s in map(checkpoint_step_of, names) if s is not None})
    wanted = step if step is not None else (steps[-1] if steps else None)
    local = _local_checkpoint_steps(out)
    if wanted is None or wanted in local or (step is None and local and max(local) >= wanted):
        wanted = None
    fetched = 0
    for name in names:
        if checkpoint_step_of(name) is None and not (out / name).exists():
            store.get(NAMESPACE, artifact_key(run, name), out / name)
            fetched += 1
    if wanted is not None:
        fetched += _stage_checkpoint(run, out, wanted, [name for name in names if checkpoint_step_of(name) == wanted])
    return fetched


def stage_init(parent: TrainingRun, step: int, target: Path) -> int:
    """Copy into `target` what a run needs to start from `parent`'s checkpoint `step`: the parent's run
    config, its tokenizer and that checkpoint, from the store (a copy even from the default store, so the
    parent's folder may rotate, be pruned or be deleted without touching this run). Returns the files
    copied; a target that is complete already (a retry) is kept."""
    names = [name for name in RunArtifact.objects.filter(run=parent).values_list("name", flat=True)
             if checkpoint_step_of(name) == step or name in INIT_FILES or artifact_kind(name) == "tokenizer"
             or name.startswith(INIT_FOLDERS)]
    if not any(checkpoint_step_of(name) == step for name in names):
        raise FileNotFoundError(f"run {parent.pk} has no recorded checkpoint at step {step}")
    if (target / "checkpoints" / str(step)).is_dir() and (target / RUN_CONFIG_FILE).exists():
        return 0
    store, copied = artifact_store(), 0
    for name in names:
        if checkpoint_step_of(name) is None:
            store.get(NAMESPACE, artifact_key(parent, name), target / name)
            copied += 1
    return copied + _stage_checkpoint(parent, target, step, [name for name in names
                                                             if checkpoint_step_of(name) == step])


def _stage_checkpoint(run: TrainingRun, out: Path, step: int, names: list[str]) -> int:
    staging = out / "checkpoints" / f".staging-{step}-{uuid.uuid4().hex[:8]}"
    prefix = f"checkpoints/{step}/"
    try:
        for name in names:
            artifact_store().get(NAMESPACE, artifact_key(run, name), staging / name.removeprefix(prefix))
        os.replace(staging, out / "checkpoints" / str(step))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return len(names)


def _local_checkpoint_steps(out: Path) -> set[int]:
    folder = out / "checkpoints"
    steps = {as_int(p.name) for p in folder.iterdir() if p.is_dir()} if folder.is_dir() else set()
    return steps - {None}
