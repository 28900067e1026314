"""The files every training run leaves in its out_dir, shared by the builtin and Tunix backends.

* `run_config.json`: written before the first step; config, hashes and model/tokenizer description.
  A restarted run checks it so it never resumes a checkpoint made from other data or settings.
* `metrics.jsonl`: one JSON object per optimizer step (step, loss, lr, grad_norm, tokens_per_s, ...).
* `run_manifest.json`: written at the end (completed or cancelled) with timings and final metrics.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path

import training

RUN_CONFIG_FILE = "run_config.json"
METRICS_FILE = "metrics.jsonl"
MANIFEST_FILE = "run_manifest.json"


class RunMismatchError(ValueError):
    """out_dir already holds a run trained with another config or dataset."""


def write_json_atomic(path: Path, value: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def ensure_run_config(out_dir: Path, run_config: dict) -> dict:
    """Write run_config.json, or check that an existing one describes the same run."""
    path = out_dir / RUN_CONFIG_FILE
    if path.exists():
        existing = read_json(path)
        for key in ("config_hash", "data_hash", "tokenizer_sha256"):
            if existing.get(key) != run_config.get(key):
                raise RunMismatchError(
                    f"{out_dir} holds a run with a different {key} ({existing.get(key)} != "
                    f"{run_config.get(key)}); resume with the same config and data or use a new out_dir."
                )
        return existing
    write_json_atomic(path, run_config)
    return run_config


class MetricsLog:
    """Append-only metrics.jsonl that can drop lines past a checkpoint when a run resumes."""

    def __init__(self, path: Path):
        self.path = path

    def keep_through(self, step: int) -> None:
        """Keep lines with step <= `step`; a killed run may have logged steps it never checkpointed
        (and may have left a half-written last line)."""
        if not self.path.exists():
            return
        kept = [line for line in read_metrics(self.path) if line.get("step", 0) <= step]
        with open(self.path, "w", encoding="utf-8") as handle:
            for line in kept:
                handle.write(json.dumps(line, sort_keys=True) + "\n")

    def append(self, metrics: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(metrics, sort_keys=True) + "\n")


def read_metrics(path: str | Path) -> list[dict]:
    lines = []
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                continue  # a torn final line from a killed process
    return lines


def git_sha() -> str | None:
    sha = os.environ.get("TUNIXRT_GIT_SHA")
    if sha:
        return sha
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(training.__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def code_version() -> dict:
    return {"training_package": training.__version__, "git_sha": git_sha()}


def device_info() -> dict:
    import jax

    devices = jax.devices()
    return {
        "platform": devices[0].platform,
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "host_cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "jax_version": jax.__version__,
    }
