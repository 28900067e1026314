"""The worker side of a training run: a thin launcher on the one job mechanism.

`training_run_launch` claims the run (a second delivery returns at once), exports the dataset split
into the run folder, and starts `python -m training train` in a fresh process (JAX never runs in the
forked worker). It relays the trainer's JSON events into log lines and metrics in batches, follows
`cancel_requested` (the cancel file first, then SIGTERM, then SIGKILL, each after a grace period),
and when the trainer exits records its files as artifacts and ends the row in exactly one state.

A retried run finds its folder and checkpoints from the lost attempt: the export is the same bytes,
the trainer resumes from its latest checkpoint, and replayed steps overwrite their metric rows.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from apps.core.child import CancelEscalation, ChildProcess
from apps.core.errors import Invalid
from apps.core.jobs import JobCancelled, JobContext, JobLost, job_run
from apps.core.notify import notify
from apps.datasets.selectors import dataset_export_chunks
from apps.runs import storage
from apps.runs.models import RunLogLine, RunMetric, TrainingRun
from apps.runs.signals import training_run_finished

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
FLUSH_ROWS = 2000
CANCEL_POLL_SECONDS = 1.0
METRIC_FIELDS = ("loss", "lr", "grad_norm", "tokens_per_s", "eval_loss")
EXIT_INPUT_ERROR = 2


def training_run_launch(*, run_id) -> str | None:
    """Run one training job (called by the Celery task); returns its final status."""
    status = job_run(TrainingRun, run_id, _train)
    if status is not None:
        notify(run_topic(run_id))
        training_run_finished.send(sender=TrainingRun, run_id=run_id, status=status)
    return status


def run_topic(run_id) -> str:
    return f"run:{run_id}"


def _train(run: TrainingRun, context: JobContext) -> dict:
    paths = storage.RunPaths.of(run)
    relay = Relay(run)
    relay.note(f"attempt {context.claim.attempt} of {run.max_attempts} claimed by {run.worker}")
    _export_inputs(run, paths, relay)
    child = _start_trainer(run, paths)
    relay.note(f"trainer started (pid {child.pid}): {run.backend} {run.model}, {run.max_steps} steps")
    outcome = Follow(child, relay, context, paths).until_exit()
    storage.record_artifacts(run, paths)
    return _ending(run, paths, relay, outcome)


# --- inputs --------------------------------------------------------------------------------------

def _export_inputs(run: TrainingRun, paths: storage.RunPaths, relay: Relay) -> None:
    """The split as tunix_sft (and the val split for eval losses), plus the config file.

    Written to a temporary name and renamed, so a killed export never leaves a truncated file
    that a retry would train on (the trainer's resume check would then refuse the data hash)."""
    paths.inputs.mkdir(parents=True, exist_ok=True)
    _write_export(run, run.split, paths.train_data)
    val = run.dataset_version.val_count if run.split != "val" else 0
    if val and run.config.get("eval_every"):
        _write_export(run, "val", paths.eval_data)
    config = dict(run.config)
    if config.get("model_dir"):
        config["model_dir"] = str(Path(settings.MODELS_DIR).resolve() / config["model_dir"])
    paths.config.write_text(yaml.safe_dump(config, sort_keys=True), encoding="utf-8")
    relay.note(f"exported {run.dataset_version_id} split {run.split} ({run.dataset_content_hash[:12]}…)")


def _write_export(run: TrainingRun, split: str, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    with open(partial, "wb") as handle:
        for chunk in dataset_export_chunks(dataset=run.dataset_version, fmt="tunix_sft", split=split):
            handle.write(chunk)
    os.replace(partial, target)


def _start_trainer(run: TrainingRun, paths: storage.RunPaths) -> ChildProcess:
    paths.cancel_file.unlink(missing_ok=True)  # a retry after a cancel request must not stop at once
    command = [sys.executable, "-m", "training", "train", "--config", str(paths.config),
               "--data", str(paths.train_data), "--out", str(paths.out), "--cancel-file", str(paths.cancel_file),
               "--parent-pid", str(os.getpid())]
    if paths.eval_data.exists():
        command += ["--eval-data", str(paths.eval_data)]
    return ChildProcess(command, cwd=settings.BASE_DIR)


# --- relay ---------------------------------------------------------------------------------------

class Relay:
    """Buffers the trainer's output and writes it in batches: log lines by sequence number (unique
    per run), metrics by step (upserted, so a resumed attempt's replayed steps replace their rows)."""

    def __init__(self, run: TrainingRun):
        self.run = run
        self.next_seq = (RunLogLine.objects.filter(run=run).aggregate(last=Max("seq"))["last"] or 0) + 1
        self.lines: list[RunLogLine] = []
        self.metrics: dict[int, RunMetric] = {}
        self.last_step: int | None = None
        self.first_step_seen = False
        self.flushed_at = time.monotonic()

    def note(self, text: str) -> None:
        self.line("launcher", text)

    def line(self, stream: str, text: str) -> None:
        self.lines.append(RunLogLine(run=self.run, seq=self.next_seq, stream=stream, text=text[:10_000],
                                     at=timezone.now()))
        self.next_seq += 1

    def metric(self, event: dict) -> None:
        step = int(event["step"])
        values = {name: _number(event.get(name)) for name in METRIC_FIELDS}
        self.metrics[step] = RunMetric(run=self.run, step=step, at=timezone.now(), **values)
        self.last_step = step

    def due(self) -> bool:
        return (time.monotonic() - self.flushed_at >= FLUSH_SECONDS
                or len(self.lines) + len(self.metrics) >= FLUSH_ROWS)

    def flush(self) -> None:
        if self.lines:
            RunLogLine.objects.bulk_create(self.lines, batch_size=1000, ignore_conflicts=True)
        if self.metrics:
            RunMetric.objects.bulk_create(list(self.metrics.values()), batch_size=1000, update_conflicts=True,
                                          unique_fields=["run", "step"], update_fields=[*METRIC_FIELDS, "at"])
        if self.lines or self.metrics:
            self._progress()
            notify(run_topic(self.run.pk))
        self.lines, self.metrics, self.flushed_at = [], {}, time.monotonic()

    def _progress(self) -> None:
        if self.last_step is None:
            return
        fields = {"steps_completed": self.last_step, "progress_done": self.last_step,
                  "progress_total": self.run.max_steps}
        if not self.first_step_seen:
            self.first_step_seen = True
            TrainingRun.objects.filter(pk=self.run.pk, first_step_at__isnull=True).update(first_step_at=timezone.now())
        TrainingRun.objects.filter(pk=self.run.pk).update(**fields)


def _number(value):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass
class Outcome:
    returncode: int
    done: dict | None = None
    error: dict | None = None
    stderr_tail: list[str] = field(default_factory=list)
    cancel_stage: str | None = None  # file | sigterm | sigkill, when a cancel was requested


class Follow:
    """Relays the trainer's stdout (JSON events) and stderr, and watches for cancellation and a lost
    claim (the job context's thread beats the heartbeat)."""

    def __init__(self, child: ChildProcess, relay: Relay, context: JobContext, paths: storage.RunPaths):
        self.child, self.relay, self.context = child, relay, context
        self.cancel = CancelEscalation(child, paths.cancel_file, relay.note)
        self.outcome = Outcome(returncode=0)
        self.cancel_checked = 0.0

    def until_exit(self) -> Outcome:
        for line in self.child.lines():
            if line is not None:
                self._take(*line)
            if self.relay.due():
                self.relay.flush()
            self._watch()
        self.outcome.returncode = self.child.wait()
        self.outcome.cancel_stage = self.cancel.stage
        self.relay.flush()
        return self.outcome

    def _take(self, name: str, text: str) -> None:
        if name == "stderr":
            self.outcome.stderr_tail = [*self.outcome.stderr_tail[-40:], text]
            self.relay.line("stderr", text)
            return
        event = parse_event(text)
        kind = event.get("event") if event else None
        if kind == "step":
            self.relay.metric(event)
        elif kind == "log":
            self.relay.line("trainer", str(event.get("message", "")))
        elif kind == "done":
            self.outcome.done = event
        elif kind == "error":
            self.outcome.error = event
            self.relay.line("trainer", f"error: {event.get('message', '')}")
        else:
            self.relay.line("trainer", text)

    def _watch(self) -> None:
        if self.context.lost:
            self.child.signal(signal.SIGKILL)
            self.relay.flush()
            raise JobLost(f"run {self.relay.run.pk}: claim lost while training")
        now = time.monotonic()
        if self.cancel.started is None and now - self.cancel_checked >= CANCEL_POLL_SECONDS:
            self.cancel_checked = now
            if TrainingRun.objects.filter(pk=self.relay.run.pk, cancel_requested=True).exists():
                self.cancel.start("cancel requested")
        self.cancel.tick()


def parse_event(text: str) -> dict | None:
    """A JSON event line of the training CLI, or None for anything else."""
    try:
        event = json.loads(text)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


# --- the end -------------------------------------------------------------------------------------

def _ending(run: TrainingRun, paths: storage.RunPaths, relay: Relay, outcome: Outcome) -> dict:
    done = outcome.done or {}
    if done.get("status") == "completed" and outcome.returncode == 0:
        fields = _final_fields(paths)
        relay.note(f"completed {fields.get('steps_completed')} steps, final loss {fields.get('final_loss')}")
        relay.flush()
        return fields
    if done.get("status") == "cancelled" or outcome.cancel_stage is not None:
        relay.note(f"cancelled ({done.get('cancel_reason') or outcome.cancel_stage}); "
                   f"last checkpoint kept in {paths.out / 'checkpoints'}")
        relay.flush()
        TrainingRun.objects.filter(pk=run.pk).update(**_final_fields(paths))
        raise JobCancelled("Cancelled on request; the last checkpoint is kept.")
    relay.flush()
    if outcome.returncode == EXIT_INPUT_ERROR and outcome.error:
        raise Invalid(outcome.error.get("errors") or {"trainer": [outcome.error.get("message", "input error")]},
                      code="trainer_input_error")
    tail = "\n".join(outcome.stderr_tail[-20:])
    raise RuntimeError(f"trainer exited with code {outcome.returncode}:\n{tail}")


def _final_fields(paths: storage.RunPaths) -> dict:
    manifest = storage.read_manifest(paths)
    if manifest is None:
        return {}
    throughput = manifest.get("throughput") or {}
    final = manifest.get("final_metrics") or {}
    return {
        "steps_completed": manifest.get("steps_completed") or 0,
        "final_loss": final.get("loss"),
        "final_metrics": final,
        "mfu_estimate": (throughput.get("mfu") or {}).get("estimate"),
        "tokens_per_s": throughput.get("tokens_per_s"),
        "code_version": manifest.get("code_version") or {},
        "device": manifest.get("device") or {},
        "timings": manifest.get("timings") or {},
    }
