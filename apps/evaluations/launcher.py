"""The worker side of an evaluation: a thin launcher on the one job mechanism and the one follow loop.

`evaluation_launch` claims the evaluation, writes the items that have no prediction yet, and runs
`python -m training evaluate --events` in a fresh process on the run's checkpoint. Each streamed
prediction is scored by the judges that run here (llm_judge) and stored in batches fenced by the attempt,
one row per item (unique): a retry after a crash, or after a cancel, generates only the items still
missing. When the child exits, the metrics are computed from the stored predictions and the evaluation
ends in one final state. A cancel stops the child after its current batch; what it stored is kept.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db.models import Count

from apps.core.child import ChildProcess, Sink, follow
from apps.core.jobs import JobCancelled, JobContext, job_run
from apps.core.notify import notify
from apps.evaluations import judges
from apps.evaluations.models import EvalItem, Evaluation, Prediction
from apps.evaluations.selectors import evaluation_scores
from apps.runs.launcher import cancel_grace_seconds
from apps.runs.storage import RunPaths, stage_outputs
from training import protocol

FLUSH_SECONDS = 1.0


def evaluation_launch(*, evaluation_id) -> str | None:
    """Run one evaluation job (called by the Celery task); its end is announced by the job kind."""
    return job_run(Evaluation, evaluation_id, _evaluate)


def evaluation_topic(evaluation_id) -> str:
    return f"evaluation:{evaluation_id}"


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
        _generate(evaluation, remaining, len(items), context)
    return {**evaluation_scores(evaluation), "item_count": len(items)}


def _generate(evaluation: Evaluation, remaining: list[EvalItem], total: int, context: JobContext) -> None:
    folder = Path(settings.DATA_DIR) / "evaluations" / str(evaluation.pk)
    folder.mkdir(parents=True, exist_ok=True)
    items_file = folder / f"attempt-{context.claim.attempt}.items.jsonl"
    cancel_file = folder / "CANCEL"
    cancel_file.unlink(missing_ok=True)
    items_file.write_text("".join(json.dumps(item.as_item()) + "\n" for item in remaining), encoding="utf-8")
    # On a host that did not train the run, the checkpoint and its files come from the artifact store.
    context.retry_while_owned(lambda: stage_outputs(evaluation.run, model_folder(evaluation),
                                                    step=evaluation.checkpoint_step))
    store = PredictionStore(evaluation, remaining, evaluation.judges, context, done=total - len(remaining))
    child = ChildProcess(_command(evaluation, items_file, cancel_file), cwd=settings.BASE_DIR)
    try:
        outcome = follow(child, context, store, cancel_file=cancel_file,
                         grace_seconds=cancel_grace_seconds(evaluation.run.backend))
    finally:
        items_file.unlink(missing_ok=True)
    context.progress(store.done, total)
    if outcome.cancelled:
        raise JobCancelled(f"Cancelled on request after {store.done} of {total} items; they are kept.")
    outcome.raise_unless_completed("the evaluator", input_error_code="evaluation_input_error")


def _command(evaluation: Evaluation, items_file: Path, cancel_file: Path) -> list[str]:
    generation = evaluation.generation or {}
    command = [sys.executable, "-m", "training", "evaluate", "--out", str(model_folder(evaluation)),
               "--eval", str(items_file), "--events", "--batch-size", str(generation.get("batch_size") or 16),
               "--cancel-file", str(cancel_file), "--parent-pid", str(os.getpid())]
    if generation.get("max_new_tokens"):
        command += ["--max-new-tokens", str(generation["max_new_tokens"])]
    if evaluation.checkpoint_step:
        command += ["--checkpoint-step", str(evaluation.checkpoint_step)]
    return command


class PredictionStore(Sink):
    """Turns `prediction` events into rows and writes them in batches fenced by the attempt (duplicates
    ignored: the row is unique per evaluation and item); progress goes to the job context."""

    def __init__(self, evaluation: Evaluation, items: list[EvalItem], judge_set: list[dict], context: JobContext,
                 *, done: int = 0):
        self.evaluation, self.context, self.done = evaluation, context, done
        self.items = {item.item_id: item for item in items}
        self.use_reasoning = any(j["name"] == "reasoning_checks" for j in judge_set)
        self.use_llm = any(j["name"] == "llm_judge" for j in judge_set)
        self.pending: list[Prediction] = []
        self.flushed_at = time.monotonic()

    def event(self, event: dict) -> None:
        if event["event"] == protocol.PREDICTION:
            self.add(event)

    def add(self, event: dict) -> None:
        item = self.items.get(event.get("id"))
        if item is None:
            return
        output = str(event.get("output", ""))
        scored = {"correct": bool(event.get("correct")), "format_ok": bool(event.get("format_ok")),
                  "reasoning_ok": event.get("reasoning_ok") if self.use_reasoning else None,
                  "reasoning": (event.get("reasoning") or {}) if self.use_reasoning else {},
                  "extracted_answer": event.get("extracted_answer")}
        self.pending.append(Prediction.judged(
            self.evaluation, item, output, scored, tokens=event.get("tokens"), stopped=event.get("stopped"),
            latency_s=event.get("latency_s"),
            llm_judge=judges.llm_judge(item.as_item(), output, scored) if self.use_llm else None))

    def due(self) -> bool:
        return bool(self.pending) and time.monotonic() - self.flushed_at >= FLUSH_SECONDS

    def flush(self) -> None:
        """Store what is pending, only while this attempt owns the evaluation."""
        if self.pending:
            with self.context.claim.fenced():
                Prediction.objects.bulk_create(self.pending, batch_size=500, ignore_conflicts=True)
                self.done = _stored(self.evaluation)
            notify(evaluation_topic(self.evaluation.pk))
            self.context.progress(self.done)
        self.pending, self.flushed_at = [], time.monotonic()


def _stored(evaluation: Evaluation) -> int:
    return Prediction.objects.filter(evaluation=evaluation).aggregate(n=Count("id"))["n"]
