"""A run's folder under RUNS_DIR/<run id>: inputs the launcher writes, the trainer's output folder,
and the artifacts recorded from it. Artifact names are paths relative to the output folder; a name
is resolved only to a recorded artifact whose path stays inside that folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from apps.runs.models import RunArtifact, TrainingRun
from training.run_files import MANIFEST_FILE, file_sha256


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


def record_artifacts(run: TrainingRun, paths: RunPaths) -> int:
    """One row per file in the output folder (size, sha256); rows of files that are gone (checkpoints
    the trainer rotated out) are removed."""
    if not paths.out.is_dir():
        return 0
    rows = []
    for path in sorted(p for p in paths.out.rglob("*") if p.is_file() and not p.name.endswith(".tmp")):
        name = path.relative_to(paths.out).as_posix()
        rows.append(RunArtifact(run=run, name=name, kind=artifact_kind(name), size_bytes=path.stat().st_size,
                                sha256=file_sha256(path)))
    RunArtifact.objects.filter(run=run).exclude(name__in=[row.name for row in rows]).delete()
    RunArtifact.objects.bulk_create(rows, batch_size=500, update_conflicts=True, unique_fields=["run", "name"],
                                    update_fields=["kind", "size_bytes", "sha256"])
    return len(rows)


def read_manifest(paths: RunPaths) -> dict | None:
    path = paths.out / MANIFEST_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def artifact_path(run: TrainingRun, artifact: RunArtifact) -> Path | None:
    """The file of a recorded artifact, or None if it would leave the run's output folder or is gone."""
    out = RunPaths.of(run).out.resolve()
    candidate = (out / artifact.name).resolve()
    if not candidate.is_relative_to(out) or not candidate.is_file():
        return None
    return candidate
