"""Evaluations with given per-item outcomes, stored without generating (for the leaderboard and
regression tests); their metrics come from the stored predictions like a real evaluation's."""

from django.utils import timezone

from apps.evaluations import judges
from apps.evaluations.models import Evaluation, Prediction
from apps.evaluations.selectors import evaluation_scores
from apps.runs.selectors import run_checkpoint_steps


def scored_evaluation(run, eval_set, correct: list[bool], *, format_ok: list[bool] | None = None,
                      judge_names=("answer_exact", "format"), source="server", checkpoint_step=None) -> Evaluation:
    """A completed evaluation of the first len(correct) items; by default of the run's latest checkpoint."""
    judge_set = judges.judge_set(list(judge_names))
    items = list(eval_set.items.order_by("position"))[: len(correct)]
    steps = run_checkpoint_steps(run) if run is not None else []
    evaluation = Evaluation.objects.create(
        run=run, eval_set=eval_set, eval_set_hash=eval_set.content_hash, judges=judge_set,
        judge_key=judges.judge_key(judge_set), item_count=len(items), status="completed",
        finished_at=timezone.now(), limit=len(items) if len(items) < eval_set.item_count else None, source=source,
        checkpoint_step=checkpoint_step or (steps[-1] if steps else None))
    format_ok = format_ok or [True] * len(items)
    Prediction.objects.bulk_create([
        Prediction(evaluation=evaluation, item=item, raw_output="x", correct=ok, format_ok=fmt)
        for item, ok, fmt in zip(items, correct, format_ok, strict=True)])
    Evaluation.objects.filter(pk=evaluation.pk).update(**evaluation_scores(evaluation))
    evaluation.refresh_from_db()
    return evaluation
