"""How every backend ends a run: timings, the run manifest on disk, and the `TrainResult` it returns.

Shared by `training.engine` (builtin) and `training.backends.tunix_backend`, so neither imports the other.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from training.checkpoints import checkpoint_dir
from training.hooks import TrainHooks
from training.run_files import MANIFEST_FILE, METRICS_FILE, read_metrics, write_json_atomic


@dataclasses.dataclass
class TrainResult:
    status: str  # "completed" | "cancelled"
    out_dir: str
    steps_completed: int
    final_loss: float | None
    metrics_path: str
    manifest_path: str
    checkpoint_dir: str
    manifest: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def run_timings(started_at: str, began: float) -> dict:
    return {"started_at": started_at, "finished_at": utc_now(), "wall_seconds": time.perf_counter() - began}


def run_ending(outcome, timings: dict, out_dir: Path) -> dict:
    """The manifest keys every backend ends a run with, computed one way. `outcome` has `status`,
    `cancel_reason`, `start_step`, `final_step`, `compile_seconds` and `step_seconds` (this process's).

    Final metrics come from metrics.jsonl, not from this process's steps: a run resumed at its last step
    (a retry after its worker died just before recording the end) still reports the whole run's."""
    seconds = outcome.step_seconds
    return {
        "status": outcome.status,
        "cancel_reason": outcome.cancel_reason,
        "resumed_from_step": outcome.start_step,
        "steps_completed": outcome.final_step,
        "timings": {
            **timings,
            "compile_and_first_step_seconds": outcome.compile_seconds,
            "median_step_seconds": statistics.median(seconds) if seconds else None,
            "steps_this_process": outcome.final_step - outcome.start_step,
        },
        "final_metrics": final_metrics(out_dir / METRICS_FILE),
    }


def final_metrics(metrics_path: Path) -> dict:
    """The last step's loss, lr and grad norm, the last eval loss, and the mean loss of the last ten steps."""
    lines = read_metrics(metrics_path) if metrics_path.exists() else []
    if not lines:
        return {}
    last = lines[-1]
    final = {key: last[key] for key in ("loss", "lr", "grad_norm") if key in last}
    evals = [line["eval_loss"] for line in lines if "eval_loss" in line]
    if evals:
        final["eval_loss"] = evals[-1]
    recent = [line["loss"] for line in lines[-10:]]
    final["mean_loss_last_10"] = sum(recent) / len(recent)
    return final


def finish_run(out_dir: Path, hooks: TrainHooks, status: str, final_step: int, manifest: dict) -> TrainResult:
    """Write the run manifest and describe the finished run."""
    write_json_atomic(out_dir / MANIFEST_FILE, manifest)
    hooks.on_log(f"run {status} at step {final_step}")
    return TrainResult(
        status=status,
        out_dir=str(out_dir),
        steps_completed=final_step,
        final_loss=manifest["final_metrics"].get("loss"),
        metrics_path=str(out_dir / METRICS_FILE),
        manifest_path=str(out_dir / MANIFEST_FILE),
        checkpoint_dir=str(checkpoint_dir(out_dir)),
        manifest=manifest,
    )
