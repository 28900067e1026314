"""An evaluation end to end through the launcher (as the Celery task calls it): real generation from
a trained checkpoint, one prediction per item, metrics equal to a recomputation from the stored rows,
a resumed evaluation that generates only what is missing, and a second delivery that does nothing."""

import pytest

from apps.core.testing import tasks_not_sent
from apps.evaluations.launcher import evaluation_launch
from apps.evaluations.models import Evaluation, Prediction
from apps.evaluations.services import evaluation_request
from training.stats import bootstrap_ci, wilson_interval


def _queued(run, **request):
    with tasks_not_sent():
        return evaluation_request(run=run, data={"eval_set": "small-v1", **request})


def _recompute(evaluation) -> dict:
    rows = list(Prediction.objects.filter(evaluation=evaluation).order_by("item__position")
                .values_list("correct", "format_ok", "reasoning_ok", "item__category"))
    accuracy = sum(r[0] for r in rows) / len(rows)
    by_category = {}
    for correct, _, _, category in rows:
        by_category.setdefault(category, []).append(correct)
    return {"count": len(rows), "answer_accuracy": accuracy,
            "format_compliance": sum(r[1] for r in rows) / len(rows),
            "reasoning_check_rate": sum(r[2] for r in rows) / len(rows),
            "answer_accuracy_ci": list(wilson_interval(sum(r[0] for r in rows), len(rows))),
            "answer_accuracy_bootstrap_ci": list(bootstrap_ci([float(r[0]) for r in rows])),
            "by_category": {name: sum(v) / len(v) for name, v in by_category.items()}}


@pytest.mark.django_db
def test_an_evaluation_stores_one_prediction_per_item_and_metrics_that_match_them(completed_run, small_set):
    evaluation = _queued(completed_run, judges=["answer_exact", "format", "reasoning_checks", "llm_judge"])
    assert evaluation_launch(evaluation_id=evaluation.pk) == "completed"
    evaluation.refresh_from_db()
    assert (evaluation.status, evaluation.progress_done, evaluation.item_count) == ("completed", 6, 6)
    assert Prediction.objects.filter(evaluation=evaluation).count() == 6
    expected = _recompute(evaluation)
    metrics = evaluation.metrics
    for key in ("count", "answer_accuracy", "format_compliance", "reasoning_check_rate", "answer_accuracy_ci",
                "answer_accuracy_bootstrap_ci"):
        assert metrics[key] == expected[key], key
    assert {k: v["answer_accuracy"] for k, v in metrics["by_category"].items()} == expected["by_category"]
    assert evaluation.primary_score == expected["answer_accuracy"]
    assert [evaluation.ci_low, evaluation.ci_high] == expected["answer_accuracy_ci"]
    assert metrics["answer_accuracy_ci_method"] == "wilson"
    assert metrics["llm_judge"]["mode"] == "mock"
    assert all(p.llm_judge["mode"] == "mock" for p in Prediction.objects.filter(evaluation=evaluation))
    assert evaluation.judge_key.startswith("answer_exact@1+format@1+reasoning_checks@1+llm_judge@1:mock:")


@pytest.mark.django_db
def test_a_resumed_evaluation_generates_only_the_missing_items(completed_run, small_set):
    first = _queued(completed_run, limit=3)
    evaluation_launch(evaluation_id=first.pk)
    evaluation = _queued(completed_run)
    kept = []
    for row in Prediction.objects.filter(evaluation=first):  # as if an earlier attempt had stored them
        row.pk, row.evaluation, row.raw_output = None, evaluation, "<kept from the lost attempt>"
        row.save()
        kept.append(row.pk)
    assert evaluation_launch(evaluation_id=evaluation.pk) == "completed"
    stored = Prediction.objects.filter(evaluation=evaluation)
    assert stored.count() == 6
    assert set(stored.filter(raw_output="<kept from the lost attempt>").values_list("pk", flat=True)) == set(kept)


@pytest.mark.django_db
def test_the_task_delivered_twice_evaluates_once(completed_run, small_set):
    evaluation = _queued(completed_run, limit=2)
    assert evaluation_launch(evaluation_id=evaluation.pk) == "completed"
    assert evaluation_launch(evaluation_id=evaluation.pk) is None
    assert Evaluation.objects.get(pk=evaluation.pk).attempt == 1
    assert Prediction.objects.filter(evaluation=evaluation).count() == 2


@pytest.mark.django_db
def test_a_section_and_a_limit_select_the_items(completed_run, small_set):
    evaluation = _queued(completed_run, section="out_of_distribution", limit=1)
    evaluation_launch(evaluation_id=evaluation.pk)
    items = list(Prediction.objects.filter(evaluation=evaluation).values_list("item__item_id", "item__section"))
    assert items == [("small-v1-4", "out_of_distribution")]
