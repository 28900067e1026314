"""The files every training run leaves in its out_dir, shared by the builtin and Tunix backends.

* `run_config.json`: written before the first step; config, hashes and model/tokenizer description.
  A restarted run checks it so it never resumes a checkpoint made from other data or settings.
* `metrics.jsonl`: one JSON object per optimizer step (step, loss, lr, grad_norm, tokens_per_s, ...).
* `run_manifest.json`: written at the end (completed or cancelled) with timings and final metrics.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import training

RUN_CONFIG_FILE = "run_config.json"
METRICS_FILE = "metrics.jsonl"
MANIFEST_FILE = "run_manifest.json"


class RunMismatchError(ValueError):
    """out_dir already holds a run trained with another config or dataset."""


class RunFolderBusy(RuntimeError):
    """Another process is training into this out_dir right now."""


@contextlib.contextmanager
def run_folder_lock(out_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on a run folder while training into it (`<out_dir>.lock`, beside it so it
    never becomes an artifact). A trainer whose launcher lost its claim but still runs, say on a host that
    froze and woke up, cannot write checkpoints beside the attempt that took its place."""
    lock_path = out_dir.with_name(out_dir.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise RunFolderBusy(f"the run folder is being trained into by {holder}; not starting a second "
                                "trainer beside it") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{socket.gethostname()}:{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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


def context_length(run_config: dict) -> int:
    """The context a run's model was trained on: its TrainConfig's max_seq_len, or (a GRPO run, whose
    config has none) the one it inherited from the run it started from."""
    return int(run_config.get("max_seq_len") or run_config["config"]["max_seq_len"])


def ensure_run_config(out_dir: Path, run_config: dict) -> dict:
    """Write run_config.json, or check that an existing one describes the same run."""
    path = out_dir / RUN_CONFIG_FILE
    if path.exists():
        existing = read_json(path)
        for key in ("config_hash", "data_hash", "tokenizer_sha256", "base_weights_sha256"):
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
