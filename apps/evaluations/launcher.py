"""The worker side of an evaluation: a thin launcher on the one job mechanism.

`evaluation_launch` claims the evaluation, writes the items that have no prediction yet, and runs
`python -m training evaluate --events` in a fresh process on the run's checkpoint. Each streamed
prediction is scored by the judges that run here (llm_judge) and stored in batches, one row per item
(unique): a retry after a crash generates only the items still missing. When the child exits, the
metrics are computed from the stored predictions and the evaluation ends in one final state.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db.models import Count

from apps.core.child import CancelEscalation, ChildProcess
from apps.core.errors import Invalid
from apps.core.jobs import JobCancelled, JobContext, JobLost, job_run
from apps.core.notify import notify
from apps.evaluations import judges
from apps.evaluations.models import EvalItem, Evaluation, Prediction
from apps.evaluations.selectors import evaluation_metrics
from apps.evaluations.signals import evaluation_finished
from apps.runs.launcher import parse_event
from apps.runs.storage import RunPaths

FLUSH_SECONDS = 1.0
CANCEL_POLL_SECONDS = 1.0
EXIT_INPUT_ERROR = 2


def evaluation_launch(*, evaluation_id) -> str | None:
    status = job_run(Evaluation, evaluation_id, _evaluate)
    if status is not None:
        notify(f"evaluation:{evaluation_id}")
        evaluation_finished.send(sender=Evaluation, evaluation_id=evaluation_id, status=status)
    return status


def evaluation_items(evaluation: Evaluation) -> list[EvalItem]:
    items = evaluation.eval_set.items.order_by("position")
    if evaluation.section:
        items = items.filter(section=evaluation.section)
    return list(items[: evaluation.limit] if evaluation.limit else items)


def model_folder(evaluation: Evaluation) -> Path:
    """The trained model an evaluation reads: its run's output folder."""
    return RunPaths.of(evaluation.run).out


def _evaluate(evaluation: Evaluation, context: JobContext) -> dict:
    items = evaluation_items(evaluation)
    done = set(Prediction.objects.filter(evaluation=evaluation).values_list("item_id", flat=True))
    remaining = [item for item in items if item.pk not in done]
    context.progress(len(done), len(items))
    if remaining:
        _generate(evaluation, remaining, len(done), len(items), context)
    metrics = evaluation_metrics(evaluation)
    interval = metrics.get("answer_accuracy_ci") or [None, None]
    return {"metrics": metrics, "primary_score": metrics["answer_accuracy"], "ci_low": interval[0],
            "ci_high": interval[1], "item_count": len(items)}


def _generate(evaluation: Evaluation, remaining: list[EvalItem], done: int, total: int,
              context: JobContext) -> None:
    folder = Path(settings.DATA_DIR) / "evaluations" / str(evaluation.pk)
    folder.mkdir(parents=True, exist_ok=True)
    items_file = folder / f"attempt-{context.claim.attempt}.items.jsonl"
    items_file.write_text("".join(json.dumps(item.as_item()) + "\n" for item in remaining), encoding="utf-8")
    child = ChildProcess(_command(evaluation, items_file), cwd=settings.BASE_DIR)
    store = PredictionStore(evaluation, remaining, evaluation.judges)
    cancel = CancelEscalation(child, None, lambda text: None)
    error, stderr, checked = None, [], 0.0
    for line in child.lines():
        if line is not None:
            name, text = line
            event = parse_event(text) if name == "stdout" else None
            if event and event.get("event") == "prediction":
                store.add(event)
            elif event and event.get("event") == "error":
                error = event
            elif name == "stderr":
                stderr = [*stderr[-40:], text]
        if store.due():
            done += store.flush()
            context.progress(done, total)
        if context.lost:
            child.signal(signal.SIGKILL)
            raise JobLost(f"evaluation {evaluation.pk}: claim lost")
        if cancel.started is None and time.monotonic() - checked >= CANCEL_POLL_SECONDS:
            checked = time.monotonic()
            if Evaluation.objects.filter(pk=evaluation.pk, cancel_requested=True).exists():
                cancel.start("cancel requested")
        cancel.tick()
    returncode = child.wait()
    done += store.flush()
    context.progress(done, total)
    items_file.unlink(missing_ok=True)
    if cancel.started is not None:
        raise JobCancelled(f"Cancelled on request after {done} of {total} items.")
    if returncode == EXIT_INPUT_ERROR and error:
        raise Invalid({"model": [error.get("message", "input error")]}, code="evaluation_input_error")
    if returncode != 0:
        raise RuntimeError(f"evaluate exited with code {returncode}:\n" + "\n".join(stderr[-20:]))


def _command(evaluation: Evaluation, items_file: Path) -> list[str]:
    generation = evaluation.generation or {}
    command = [sys.executable, "-m", "training", "evaluate", "--out", str(model_folder(evaluation)),
               "--eval", str(items_file), "--events", "--batch-size", str(generation.get("batch_size") or 16),
               "--parent-pid", str(os.getpid())]
    if generation.get("max_new_tokens"):
        command += ["--max-new-tokens", str(generation["max_new_tokens"])]
    if evaluation.checkpoint_step:
        command += ["--checkpoint-step", str(evaluation.checkpoint_step)]
    return command


class PredictionStore:
    """Turns `prediction` events into rows and writes them in batches (duplicates ignored: the row
    is unique per evaluation and item)."""

    def __init__(self, evaluation: Evaluation, items: list[EvalItem], judge_set: list[dict]):
        self.evaluation = evaluation
        self.items = {item.item_id: item for item in items}
        self.use_reasoning = any(j["name"] == "reasoning_checks" for j in judge_set)
        self.use_llm = any(j["name"] == "llm_judge" for j in judge_set)
        self.pending: list[Prediction] = []
        self.flushed_at = time.monotonic()

    def add(self, event: dict) -> None:
        item = self.items.get(event.get("id"))
        if item is None:
            return
        output = str(event.get("output", ""))
        scored = {"correct": bool(event.get("correct")), "format_ok": bool(event.get("format_ok")),
                  "reasoning_ok": event.get("reasoning_ok") if self.use_reasoning else None}
        self.pending.append(Prediction(
            evaluation=self.evaluation, item=item, raw_output=output, extracted_answer=event.get("extracted_answer"),
            reasoning_details=(event.get("reasoning") or {}) if self.use_reasoning else {},
            llm_judge=judges.llm_judge(item.as_item(), output, scored) if self.use_llm else None,
            output_tokens=event.get("tokens"), stopped=event.get("stopped"), latency_s=event.get("latency_s"),
            **scored))

    def due(self) -> bool:
        return bool(self.pending) and time.monotonic() - self.flushed_at >= FLUSH_SECONDS

    def flush(self) -> int:
        """Store what is pending; returns how many new rows were written."""
        count = len(self.pending)
        if self.pending:
            before = _stored(self.evaluation)
            Prediction.objects.bulk_create(self.pending, batch_size=500, ignore_conflicts=True)
            count = _stored(self.evaluation) - before
            notify(f"evaluation:{self.evaluation.pk}")
        self.pending, self.flushed_at = [], time.monotonic()
        return count


def _stored(evaluation: Evaluation) -> int:
    return Prediction.objects.filter(evaluation=evaluation).aggregate(n=Count("id"))["n"]
