"""How every backend ends a run: timings, the run manifest on disk, and the `TrainResult` it returns.

Shared by `training.engine` (builtin) and `training.backends.tunix_backend`, so neither imports the other.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from pathlib import Path

from training.checkpoints import checkpoint_dir
from training.hooks import TrainHooks
from training.run_files import MANIFEST_FILE, METRICS_FILE, write_json_atomic


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
