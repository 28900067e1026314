"""Evaluation reads: visibility, metrics recomputed from stored predictions, the leaderboard,
predictions with filters, and the per-item values a regression check pairs."""

from __future__ import annotations

from django.conf import settings
from django.db.models import F, Q, QuerySet, Window
from django.db.models.functions import Rank

from apps.core.errors import NotFound
from apps.core.lookups import get_by_uuid
from apps.core.models import JobStatus
from apps.core.visibility import visible_to
from apps.evaluations.models import Evaluation, EvaluationSource, Prediction, RegressionBaseline
from training.evaluate import summarize

VIEW_ALL_PERMISSION = "evaluations.view_evaluation"
BASELINE_VIEW_ALL_PERMISSION = "evaluations.view_regressionbaseline"
# Two evaluations are compared (ranked together, checked against each other) only when all of these
# are equal: the same eval-set content, the same judges at the same versions, the same slice of items,
# and the same source (outputs generated here, or reported by a client).
COMPARABLE = ("eval_set_hash", "judge_key", "section", "limit", "source")
COMPARABLE_WORDS = {"eval_set_hash": "eval-set content", "judge_key": "judges", "section": "section",
                    "limit": "item limit", "source": "source"}
LEADERBOARD_SOURCES = ("server", "imported", "all")
PER_ITEM_FIELD = {"answer_accuracy": "correct", "format_compliance": "format_ok",
                  "reasoning_check_rate": "reasoning_ok"}


def evaluations_visible_to(user) -> QuerySet[Evaluation]:
    return visible_to(user, Evaluation.objects.all(), view_all_permission=VIEW_ALL_PERMISSION)


def baselines_visible_to(user) -> QuerySet[RegressionBaseline]:
    """Trainers, viewers and superusers see every baseline; anyone else only the ones they created (a
    baseline shows another user's evaluation id and score)."""
    return visible_to(user, RegressionBaseline.objects.all(), view_all_permission=BASELINE_VIEW_ALL_PERMISSION)


def evaluation_get(*, user, evaluation_id) -> Evaluation:
    return get_by_uuid(evaluations_visible_to(user).select_related("run", "eval_set"), evaluation_id,
                       what="evaluation")


def latest_run_evaluation(*, user, run) -> Evaluation:
    evaluation = evaluations_visible_to(user).filter(run=run).select_related("eval_set").order_by(
        "-queued_at").first()
    if evaluation is None:
        raise NotFound(f"Run {run.pk} has no evaluation yet.")
    return evaluation


def _prediction_rows(evaluation: Evaluation) -> list[dict]:
    rows = (Prediction.objects.filter(evaluation=evaluation).order_by("item__position")
            .values("correct", "format_ok", "reasoning_ok", "stopped", "llm_judge", "item__category",
                    "item__section", "item__difficulty"))
    return [{"correct": r["correct"], "format_ok": r["format_ok"], "reasoning_ok": r["reasoning_ok"],
             "stopped": r["stopped"], "llm_judge": r["llm_judge"], "category": r["item__category"],
             "section": r["item__section"], "difficulty": r["item__difficulty"]} for r in rows]


def evaluation_metrics(evaluation: Evaluation) -> dict:
    """Every metric of an evaluation, computed from its stored predictions in item order (so the
    seeded bootstrap interval is reproducible): what is stored when it completes, and what a check
    of the stored metrics recomputes."""
    predictions = _prediction_rows(evaluation)
    metrics = summarize(predictions)
    judged = [p["llm_judge"] for p in predictions if p["llm_judge"]]
    if judged:
        metrics["llm_judge"] = _llm_judge_summary(judged)
    return metrics


def _llm_judge_summary(judged: list[dict]) -> dict:
    scores = [j["score"] for j in judged if j.get("score") is not None]
    summary = {"mode": judged[0].get("mode"), "mean_score": sum(scores) / len(scores) if scores else None,
               "scored": len(scores), "errors": len(judged) - len(scores)}
    if summary["mode"] == "openai":
        # The model that graded, as the server named it (a failure without a reply names the configured
        # one, so it counts only when nothing was graded); several (swapped mid-run) are all listed.
        graders = [j for j in judged if j.get("score") is not None] or judged
        summary["judge_model"] = ", ".join(sorted({str(j.get("judge_model")) for j in graders}))
    return summary


def evaluation_scores(evaluation: Evaluation) -> dict:
    """The fields a finished evaluation stores, all computed from its predictions: `metrics`, the
    `primary_score` that ranks it (answer accuracy) and its 95 % interval (`ci_low`, `ci_high`)."""
    metrics = evaluation_metrics(evaluation)
    interval = metrics.get("answer_accuracy_ci") or [None, None]
    return {"metrics": metrics, "primary_score": metrics["answer_accuracy"], "ci_low": interval[0],
            "ci_high": interval[1]}


def comparable_differences(baseline: Evaluation, evaluation: Evaluation) -> dict:
    """{field: {"baseline": …, "evaluation": …}} for every COMPARABLE field in which they differ."""
    return {key: {"baseline": getattr(baseline, key), "evaluation": getattr(evaluation, key)}
            for key in COMPARABLE if getattr(baseline, key) != getattr(evaluation, key)}


def describe_differences(differences: dict) -> str:
    """`item limit: all items vs 10; source: server vs imported` for a 409's message."""
    def shown(key, value):
        if key == "limit":
            return "all items" if value is None else f"the first {value}"
        if key == "section":
            return value or "all sections"
        return value[:12] if key == "eval_set_hash" else value

    return "; ".join(f"{COMPARABLE_WORDS[key]}: {shown(key, pair['baseline'])} (baseline) vs "
                     f"{shown(key, pair['evaluation'])}" for key, pair in differences.items())


def comparable_to(evaluation: Evaluation) -> dict:
    """Filter kwargs selecting the evaluations comparable to `evaluation`."""
    return {key: getattr(evaluation, key) for key in COMPARABLE}


def weights_evidence(*, run_id, checkpoint_step) -> QuerySet[Evaluation]:
    """Completed server evaluations of one checkpoint that may stand for its weights (a model version's
    metrics, the champion gate), newest first: generated here, on the whole eval set (or, with
    CHAMPION_MIN_ITEMS > 0, at least that many items). Imported outputs and small slices never count."""
    enough = Q(section="", limit__isnull=True)
    if settings.CHAMPION_MIN_ITEMS:
        enough |= Q(item_count__gte=settings.CHAMPION_MIN_ITEMS)
    return (Evaluation.objects.filter(run_id=run_id, checkpoint_step=checkpoint_step, status=JobStatus.COMPLETED,
                                      source=EvaluationSource.SERVER).filter(enough)
            .select_related("eval_set").order_by("-finished_at", "-queued_at"))


def metric_value(metrics: dict, path: str) -> float | None:
    """A number from metrics by dotted path (`answer_accuracy`, `by_category.arithmetic.answer_accuracy`)."""
    value = metrics
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def paired_item_values(baseline: Evaluation, current: Evaluation, metric: str):
    """(baseline values, current values) per shared item for a per-item metric, or None.

    `answer_accuracy`, `format_compliance` and `reasoning_check_rate` are means of a per-item 0/1,
    overall or within `by_<group>.<value>.`; items scored by both evaluations are paired."""
    *group, rate = metric.split(".")
    field = PER_ITEM_FIELD.get(rate)
    if field is None or len(group) not in (0, 2) or (group and not group[0].startswith("by_")):
        return None
    filters = {f"item__{group[0][3:]}": group[1]} if group else {}

    def values(evaluation):
        return dict(Prediction.objects.filter(evaluation=evaluation, **filters).exclude(**{f"{field}__isnull": True})
                    .values_list("item_id", field))

    base, now = values(baseline), values(current)
    shared = sorted(set(base) & set(now))
    return [float(base[i]) for i in shared], [float(now[i]) for i in shared]


def leaderboard(*, user, filters: dict) -> QuerySet[Evaluation]:
    """Completed evaluations, each ranked only among comparable ones (COMPARABLE), best first.

    Imported evaluations (outputs a client reported) are left out unless `source` asks for them
    (`imported`, or `all`); even then they rank only among imported ones, since `source` is part of
    COMPARABLE."""
    evaluations = (evaluations_visible_to(user).filter(status=JobStatus.COMPLETED, primary_score__isnull=False)
                   .select_related("run", "eval_set"))
    source = filters.get("source") or EvaluationSource.SERVER
    if source != "all":
        evaluations = evaluations.filter(source=source)
    if filters.get("eval_set"):
        evaluations = evaluations.filter(eval_set_id=filters["eval_set"])
    if filters.get("dataset"):
        evaluations = evaluations.filter(run__dataset_version_id=filters["dataset"])
    if filters.get("backend"):
        evaluations = evaluations.filter(run__backend=filters["backend"])
    if "section" in filters:
        evaluations = evaluations.filter(section=filters["section"])
    ranked = evaluations.annotate(rank=Window(Rank(), partition_by=[F(key) for key in COMPARABLE],
                                              order_by=F("primary_score").desc()))
    return ranked.order_by("eval_set_id", *COMPARABLE, "rank", "-queued_at")


def predictions(*, evaluation: Evaluation, filters: dict) -> QuerySet[Prediction]:
    rows = Prediction.objects.filter(evaluation=evaluation).select_related("item").order_by("item__position")
    if "correct" in filters:
        rows = rows.filter(correct=filters["correct"])
    for key in ("category", "section", "difficulty"):
        if filters.get(key):
            rows = rows.filter(**{f"item__{key}": filters[key]})
    return rows
