"""The worker side of a training run: a thin launcher on the one job mechanism and the one follow loop.

`training_run_launch` claims the run (a second delivery returns at once), exports the dataset split
into the run folder, and starts `python -m training train` in a fresh process (JAX never runs in the
forked worker). `apps.core.child.follow` relays the trainer's events to the `Relay` below, which writes
log lines and metrics in batches fenced by the attempt, and cancels the trainer when asked (the cancel
file, then SIGTERM, then SIGKILL, after the backend's grace). When the trainer exits the launcher
records its files as artifacts, catches up any metric the database missed from the run folder's
`metrics.jsonl`, and ends the row in exactly one state.

A GRPO run follows the same path with other inputs: the split's prompts with their expected answers, its
GRPOConfig as JSON, and its parent's checkpoint copied into the run folder (`init/`), then
`python -m training grpo`. Its steps report more numbers than SFT's columns; they go to the metric row's
`values`. Its sampled completions stay in the run's `samples.jsonl` artifact, read through the API. An SFT
run continuing another run's weights gets the same `init/` copy, passed as `train --init`.

A retried run finds its folder and checkpoints from the lost attempt: the export is the same bytes,
the trainer resumes from its latest checkpoint, and replayed steps overwrite their metric rows. The
trainer holds a lock on the folder, so a lost attempt's trainer that still runs cannot write beside it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from pathlib import Path

import yaml
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Max
from django.utils import timezone

from apps.core.child import ChildProcess, Outcome, Sink, follow
from apps.core.errors import Invalid, Unavailable
from apps.core.jobs import JobCancelled, JobContext, job_run, reset_connections_after_error
from apps.core.notify import notify
from apps.core.paths import resolve_inside
from apps.core.store import artifact_store
from apps.datasets.selectors import dataset_export_chunks
from apps.runs import storage
from apps.runs.models import METRIC_FIELDS, Algorithm, RunLogLine, RunMetric, TrainingRun
from apps.runs.requests import model_dir_problem
from apps.runs.selectors import run_checkpoint_steps
from apps.runs.services import run_topic
from training import protocol
from training.grpo.config import SAMPLES_FILE
from training.run_files import METRICS_FILE, read_metrics

logger = logging.getLogger(__name__)

# Keys of a step event that are not metrics of the step.
NOT_METRICS = ("event", "step", "at")
FLUSH_SECONDS = 1.0
FLUSH_ROWS = 2000


def training_run_launch(*, run_id) -> str | None:
    """Run one training job (called by the Celery task); returns its final status. The end is announced
    by the job kind (apps.runs.apps), only when it was really recorded."""
    return job_run(TrainingRun, run_id, _train)


def cancel_grace_seconds(backend: str) -> int:
    return settings.TUNIX_CANCEL_GRACE_SECONDS if backend == "tunix" else settings.RUN_CANCEL_GRACE_SECONDS


def _train(run: TrainingRun, context: JobContext) -> dict:
    paths = storage.RunPaths.of(run)
    relay = Relay(run, context)
    relay.note(f"attempt {context.claim.attempt} of {run.max_attempts} claimed by {run.worker}")
    context.retry_while_owned(relay.flush)
    if run.algorithm == Algorithm.GRPO:
        _export_grpo_inputs(run, paths, relay)
    else:
        _export_inputs(run, paths, relay)
    if run.init_run_id is not None:
        context.retry_while_owned(lambda: _stage_init(run, paths, relay))
    context.retry_while_owned(lambda: _stage_from_store(run, paths, relay))
    child = _start_grpo(run, paths) if run.algorithm == Algorithm.GRPO else _start_trainer(run, paths)
    relay.note(f"trainer started (pid {child.pid}): {run.backend} {run.model}, {run.max_steps} steps")
    outcome = follow(child, context, relay, cancel_file=paths.cancel_file,
                     grace_seconds=cancel_grace_seconds(run.backend))
    context.retry_while_owned(lambda: relay.record_files(paths))
    return _ending(run, paths, relay, outcome, context)


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
        # Checked at request time too; the folder may have gone since. The message names the user's folder.
        problem = model_dir_problem(config["model_dir"])
        if problem:
            raise Invalid({"config.model_dir": [problem]}, code="trainer_input_error")
        config["model_dir"] = str(resolve_inside(settings.MODELS_DIR, config["model_dir"]))
    paths.config.write_text(yaml.safe_dump(config, sort_keys=True), encoding="utf-8")
    relay.note(f"exported {run.dataset_version_id} split {run.split} ({run.dataset_content_hash[:12]}…)")


def _export_grpo_inputs(run: TrainingRun, paths: storage.RunPaths, relay: Relay) -> None:
    paths.inputs.mkdir(parents=True, exist_ok=True)
    _write_export(run, run.split, paths.prompts, fmt="grpo_prompt")
    partial = paths.grpo_config.with_name(paths.grpo_config.name + ".partial")
    partial.write_text(json.dumps(run.config, sort_keys=True), encoding="utf-8")
    os.replace(partial, paths.grpo_config)
    relay.note(f"exported {run.dataset_version_id} split {run.split} as GRPO prompts "
               f"({run.dataset_content_hash[:12]}…)")


def _stage_init(run: TrainingRun, paths: storage.RunPaths, relay: Relay) -> None:
    """The parent's checkpoint, copied beside the run. Checked at request time; if the parent's files have
    gone since, the run fails as an input error naming the parent."""
    try:
        copied = storage.stage_init(run.init_run, run.init_step, paths.init)
    except FileNotFoundError as exc:
        raise Invalid({"init_from": [f"Cannot start from run {run.init_run_id} step {run.init_step}: {exc}."]},
                      code="trainer_input_error") from None
    if copied:
        relay.note(f"copied {copied} files of run {run.init_run_id} (checkpoint {run.init_step}) to start from")


def _stage_from_store(run: TrainingRun, paths: storage.RunPaths, relay: Relay) -> None:
    """A retry on a host without the lost attempt's folder (another machine, a wiped scratch disk) starts
    from what the store holds: the latest uploaded checkpoint and the files beside it."""
    fetched = storage.stage_outputs(run, paths.out)
    if fetched:
        steps = run_checkpoint_steps(run)
        relay.note(f"fetched {fetched} files from the artifact store (checkpoint {steps[-1] if steps else None})")


def _write_export(run: TrainingRun, split: str, target: Path, *, fmt: str = "tunix_sft") -> None:
    partial = target.with_name(target.name + ".partial")
    with open(partial, "wb") as handle:
        for chunk in dataset_export_chunks(dataset=run.dataset_version, fmt=fmt, split=split):
            handle.write(chunk)
    os.replace(partial, target)


def _start_trainer(run: TrainingRun, paths: storage.RunPaths) -> ChildProcess:
    paths.cancel_file.unlink(missing_ok=True)  # a retry after a cancel request must not stop at once
    command = [sys.executable, "-m", "training", "train", "--config", str(paths.config),
               "--data", str(paths.train_data), "--out", str(paths.out), "--cancel-file", str(paths.cancel_file),
               "--parent-pid", str(os.getpid())]
    if paths.eval_data.exists():
        command += ["--eval-data", str(paths.eval_data)]
    if run.init_run_id is not None:
        command += ["--init", str(paths.init), "--init-step", str(run.init_step)]
    return ChildProcess(command, cwd=settings.BASE_DIR)


def _start_grpo(run: TrainingRun, paths: storage.RunPaths) -> ChildProcess:
    paths.cancel_file.unlink(missing_ok=True)
    command = [sys.executable, "-m", "training", "grpo", "--config", str(paths.grpo_config),
               "--prompts", str(paths.prompts), "--init", str(paths.init), "--init-step", str(run.init_step),
               "--out", str(paths.out), "--cancel-file", str(paths.cancel_file), "--parent-pid", str(os.getpid())]
    return ChildProcess(command, cwd=settings.BASE_DIR)


# --- relay ---------------------------------------------------------------------------------------

class Relay(Sink):
    """Buffers the trainer's output and writes it in batches fenced by the attempt: log lines by sequence
    number (unique per run), metrics by step (upserted, so a resumed attempt's replayed steps replace their
    rows). Progress goes to the job context, whose thread is its one writer."""

    def __init__(self, run: TrainingRun, context: JobContext):
        self.run, self.context = run, context
        self.outputs = storage.OutputSync(run, storage.RunPaths.of(run).out)
        self.shared_store = artifact_store().shared
        self.next_seq = (RunLogLine.objects.filter(run=run).aggregate(last=Max("seq"))["last"] or 0) + 1
        self.lines: list[RunLogLine] = []
        self.metrics: dict[int, RunMetric] = {}
        self.last_step: int | None = None
        self.first_step_seen = False
        self.flushed_at = time.monotonic()

    def line(self, stream: str, text: str) -> None:
        stream = "trainer" if stream == "stdout" else stream
        self.lines.append(RunLogLine(run=self.run, seq=self.next_seq, stream=stream, text=text[:10_000],
                                     at=timezone.now()))
        self.next_seq += 1

    def event(self, event: dict) -> None:
        if event["event"] == protocol.STEP:
            self.metric(event)
        elif event["event"] == protocol.LOG:
            self.line("trainer", str(event.get("message", "")))
        elif event["event"] == protocol.CHECKPOINT:
            self.checkpoint_written(event)
        elif event["event"] == protocol.SAMPLES:
            self.line("trainer", f"step {event.get('step')}: {len(event.get('samples') or [])} completions sampled "
                                 f"(in {SAMPLES_FILE})")
        else:
            self.line("trainer", str(event))

    def metric(self, event: dict) -> None:
        step = int(event["step"])
        self.metrics[step] = metric_row(self.run, event)
        self.last_step = step
        self.context.progress(step, self.run.max_steps)

    def due(self) -> bool:
        return (time.monotonic() - self.flushed_at >= FLUSH_SECONDS
                or len(self.lines) + len(self.metrics) >= FLUSH_ROWS)

    def flush(self) -> None:
        if not self.lines and not self.metrics:
            self.flushed_at = time.monotonic()
            return
        with self.context.claim.fenced():
            RunLogLine.objects.bulk_create(self.lines, batch_size=1000, ignore_conflicts=True)
            upsert_metrics(list(self.metrics.values()))
            self._steps()
        notify(run_topic(self.run.pk))
        self.lines, self.metrics, self.flushed_at = [], {}, time.monotonic()

    def _steps(self) -> None:
        if self.last_step is None:
            return
        fields = {"steps_completed": self.last_step}
        if not self.first_step_seen:
            self.first_step_seen = True
            fields["first_step_at"] = timezone.now()
        self.context.claim.update(**fields)

    def checkpoint_written(self, event: dict) -> None:
        """With a shared store, each checkpoint is uploaded as it lands, so a retry on another host resumes
        from it. A store that is away for now costs only this upload: the next checkpoint, or the end,
        sends what is missing."""
        if not self.shared_store:
            return
        try:
            self.sync_outputs()
        except Unavailable as exc:
            self.line("launcher", f"checkpoint {event.get('step')} not uploaded yet: {exc.message}")
        except DatabaseError:  # uploaded but not recorded: the rows follow with the next sync
            logger.warning("could not record the uploaded outputs of run %s", self.run.pk, exc_info=True)
            reset_connections_after_error()

    def sync_outputs(self, after_record=None) -> None:
        uploaded = self.outputs.upload()  # outside the fence: an upload may take long
        with self.context.claim.fenced():
            storage.record_uploaded(self.run, uploaded)
            if after_record:
                after_record()
        storage.prune_store(self.run, uploaded)

    def record_files(self, paths: storage.RunPaths) -> None:
        """The output folder's files as artifacts (in the store first), and every step of its metrics.jsonl
        as a metric row: steps an earlier attempt wrote to disk but never relayed (its worker died, or the
        database was away) are in the database too when the run ends."""
        self.flush()
        self.sync_outputs(after_record=lambda: catch_up_metrics(self.run, paths.out / METRICS_FILE))


def metric_row(run: TrainingRun, values: dict) -> RunMetric:
    """A step's numbers: the common ones in their columns, every other finite number in `values`."""
    others = {str(name): number for name, value in values.items()
              if name not in METRIC_FIELDS and name not in NOT_METRICS and (number := _number(value)) is not None}
    return RunMetric(run=run, step=int(values["step"]), at=timezone.now(), values=others,
                     **{name: _number(values.get(name)) for name in METRIC_FIELDS})


def upsert_metrics(rows: list[RunMetric]) -> None:
    RunMetric.objects.bulk_create(rows, batch_size=1000, update_conflicts=True, unique_fields=["run", "step"],
                                  update_fields=[*METRIC_FIELDS, "values", "at"])


def catch_up_metrics(run: TrainingRun, metrics_file: Path) -> int:
    """Insert the steps of `metrics_file` that have no row yet; returns how many."""
    if not metrics_file.exists():
        return 0
    stored = set(RunMetric.objects.filter(run=run).values_list("step", flat=True))
    missing = [metric_row(run, line) for line in read_metrics(metrics_file)
               if isinstance(line.get("step"), int) and line["step"] not in stored]
    RunMetric.objects.bulk_create(missing, batch_size=1000, ignore_conflicts=True)
    return len(missing)


def _number(value):
    """A finite number as a float; anything else (a NaN a diverged run reports included) as None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


# --- the end -------------------------------------------------------------------------------------

def _ending(run: TrainingRun, paths: storage.RunPaths, relay: Relay, outcome: Outcome, context: JobContext) -> dict:
    if outcome.completed:
        fields = _final_fields(paths)
        context.progress(fields.get("steps_completed", 0), run.max_steps)
        relay.note(f"completed {fields.get('steps_completed')} steps, final loss {fields.get('final_loss')}")
        context.retry_while_owned(relay.flush)
        return fields
    if outcome.cancelled:
        relay.note(f"cancelled ({(outcome.done or {}).get('cancel_reason') or outcome.cancel_stage}); "
                   "the last checkpoint is kept")
        context.retry_while_owned(relay.flush)
        fields = _final_fields(paths)
        if fields:
            context.progress(fields["steps_completed"], run.max_steps)
            context.retry_while_owned(lambda: context.claim.update(**fields))
        raise JobCancelled("Cancelled on request; the last checkpoint is kept.")
    context.retry_while_owned(relay.flush)
    outcome.raise_unless_completed("the trainer", input_error_code="trainer_input_error")
    return {}


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
