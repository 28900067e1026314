"""Regression baselines and checks: better, equal, worse within and beyond the tolerance, a
lower-is-better metric, the paired interval, the CI command's exit codes, and bad input."""

import pytest
from django.core.management import call_command

from apps.core.errors import Conflict
from apps.core.testing import key_client
from apps.evaluations.models import RegressionBaseline, RegressionCheck
from apps.evaluations.regression import baseline_create, regression_check
from apps.evaluations.testing import SMALL_ITEMS, make_eval_set
from apps.runs.models import TrainingRun

from .factories import scored_evaluation

BASE = [True, True, True, False, False, False]  # 50 %


@pytest.fixture
def base(completed_run, small_set):
    return scored_evaluation(completed_run, small_set, BASE)


def _another_run(run):
    other = TrainingRun.objects.get(pk=run.pk)
    other.pk = other.id = None
    other.save()
    return other


def _baseline(base, **extra):
    return baseline_create(data={"name": "gate", "evaluation_id": str(base.pk), **extra})


@pytest.mark.django_db
@pytest.mark.parametrize(("current", "tolerance", "result"), [
    ([True] * 4 + [False] * 2, 0.0, "pass"),   # better
    (BASE, 0.0, "pass"),                       # equal
    ([True, True, False, False, False, False], 0.2, "pass"),  # worse by 1/6 within 0.2
    ([True, True, False, False, False, False], 0.1, "fail"),  # worse by 1/6 beyond 0.1
])
def test_checks_compare_with_the_tolerance(completed_run, small_set, base, current, tolerance, result):
    check = regression_check(baseline=_baseline(base, tolerance=tolerance),
                             evaluation=scored_evaluation(completed_run, small_set, current))
    assert check.result == result
    assert check.baseline_value == pytest.approx(0.5)
    assert check.delta == pytest.approx(sum(current) / 6 - 0.5)


@pytest.mark.django_db
@pytest.mark.parametrize(("current", "tolerance", "mode", "result"), [
    ([True] * 2 + [False] * 4, 0.0, "absolute", "pass"),   # falls by 1/6: better
    ([True] * 4 + [False] * 2, 0.0, "absolute", "fail"),   # rises by 1/6: worse
    ([True] * 4 + [False] * 2, 0.2, "absolute", "pass"),   # rises by 1/6 within 0.2
    ([True] * 5 + [False], 0.2, "absolute", "fail"),       # rises by 2/6 beyond 0.2
    ([True] * 2 + [False] * 4, 0.0, "relative", "pass"),   # better under a relative tolerance too
    ([True] * 4 + [False] * 2, 0.4, "relative", "pass"),   # 1/6 <= 0.4 * 0.5
    ([True] * 4 + [False] * 2, 0.3, "relative", "fail"),   # 1/6 > 0.3 * 0.5
])
def test_a_lower_is_better_metric_fails_only_when_it_rises_beyond_the_tolerance(completed_run, small_set, base,
                                                                                current, tolerance, mode, result):
    baseline = baseline_create(data={"name": "errors", "evaluation_id": str(base.pk), "metric": "answer_accuracy",
                                     "lower_is_better": True, "tolerance": tolerance, "tolerance_mode": mode})
    check = regression_check(baseline=baseline, evaluation=scored_evaluation(completed_run, small_set, current))
    assert check.result == result
    assert check.details["worse_by"] == pytest.approx(sum(current) / 6 - 0.5)


@pytest.mark.django_db
@pytest.mark.parametrize(("mode", "tolerance", "result"), [("absolute", 0.1, "fail"), ("relative", 0.4, "pass"),
                                                           ("relative", 0.3, "fail")])
def test_a_higher_is_better_metric_under_a_relative_tolerance(completed_run, small_set, base, mode, tolerance, result):
    worse = scored_evaluation(completed_run, small_set, [True, True, False, False, False, False])  # 1/6 lower
    check = regression_check(baseline=_baseline(base, tolerance=tolerance, tolerance_mode=mode), evaluation=worse)
    assert check.result == result


@pytest.mark.django_db
def test_identical_predictions_have_a_paired_interval_of_exactly_zero(completed_run, small_set, base):
    check = regression_check(baseline=_baseline(base), evaluation=scored_evaluation(completed_run, small_set, BASE))
    assert (check.paired_ci_low, check.paired_ci_high, check.paired_items) == (0.0, 0.0, 6)


@pytest.mark.django_db
def test_the_check_endpoint_stores_who_checked(trainer, completed_run, small_set, base):
    _baseline(base)
    current = scored_evaluation(completed_run, small_set, BASE)
    response = key_client(trainer).post("/api/regression/check", {"baseline": "gate", "evaluation_id":
                                                                  str(current.pk)}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["result"] == "pass" and response.json()["paired_ci"] == [0.0, 0.0]
    assert RegressionCheck.objects.get().created_by == trainer


@pytest.mark.django_db
@pytest.mark.parametrize(("current", "code"), [(BASE, 0), ([False] * 6, 1)])
def test_the_command_exits_0_on_pass_and_1_on_fail(completed_run, small_set, base, current, code, capsys):
    _baseline(base)
    evaluation = scored_evaluation(completed_run, small_set, current)
    if code:
        with pytest.raises(SystemExit) as exited:
            call_command("regression_check", "--baseline", "gate", "--evaluation", str(evaluation.pk))
        assert exited.value.code == 1
    else:
        call_command("regression_check", "--baseline", "gate", "--evaluation", str(evaluation.pk))
    assert '"result"' in capsys.readouterr().out


@pytest.mark.django_db
def test_the_command_exits_2_on_bad_input(base):
    _baseline(base)
    for args in (["--baseline", "nope", "--evaluation", str(base.pk)],
                 ["--baseline", "gate", "--evaluation", "00000000-0000-4000-8000-000000000000"],
                 ["--baseline", "gate", "--run", "not-a-run"]):
        with pytest.raises(SystemExit) as exited:
            call_command("regression_check", *args)
        assert exited.value.code == 2, args


@pytest.mark.django_db
def test_the_command_checks_a_runs_latest_evaluation(completed_run, small_set, base):
    _baseline(base)
    scored_evaluation(completed_run, small_set, [False] * 6)
    with pytest.raises(SystemExit) as exited:
        call_command("regression_check", "--baseline", "gate", "--run", str(completed_run.pk))
    assert exited.value.code == 1


@pytest.mark.django_db
def test_a_baseline_on_a_metric_the_evaluation_lacks_is_refused(trainer, base):
    response = key_client(trainer).post("/api/regression/baselines", {
        "name": "gate", "evaluation_id": str(base.pk), "metric": "by_category.poetry.answer_accuracy"},
        format="json")
    assert response.status_code == 400 and "metric" in response.json()["detail"]
    assert not RegressionBaseline.objects.exists()


@pytest.mark.django_db
def test_an_evaluation_on_other_eval_set_content_cannot_be_checked(completed_run, base):
    other = make_eval_set(name="other", items=SMALL_ITEMS)
    with pytest.raises(Conflict) as raised:
        regression_check(baseline=_baseline(base), evaluation=scored_evaluation(completed_run, other, BASE))
    assert raised.value.code == "not_comparable" and "eval-set content" in raised.value.message
    assert set(raised.value.extra["differences"]) == {"eval_set_hash"}
    assert not RegressionCheck.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("evaluation", "field", "words"), [
    (lambda run, s: scored_evaluation(run, s, BASE[:4]), "limit", "item limit: all items (baseline) vs the first 4"),
    (lambda run, s: scored_evaluation(run, s, BASE, judge_names=("answer_exact", "format", "reasoning_checks")),
     "judge_key", "judges: answer_exact@1+format@1 (baseline) vs answer_exact@1+format@1+reasoning_checks@1"),
    (lambda run, s: scored_evaluation(run, s, BASE, source="imported"), "source", "source: server (baseline) vs "
                                                                                 "imported"),
])
def test_a_slice_judge_or_source_mismatch_is_a_409_naming_the_difference(trainer, completed_run, small_set, base,
                                                                        evaluation, field, words):
    _baseline(base)
    current = evaluation(completed_run, small_set)
    response = key_client(trainer).post("/api/regression/check", {"baseline": "gate", "evaluation_id":
                                                                  str(current.pk)}, format="json")
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["error"] == "not_comparable" and words in body["detail"]
    assert list(body["differences"]) == [field]
    assert not RegressionCheck.objects.exists()


@pytest.mark.django_db
def test_the_same_checkpoint_on_ten_items_is_not_checked_against_the_full_set(trainer, completed_run, small_set):
    """The issue's case: a 250-item baseline and a 10-item evaluation of the same checkpoint answered 'fail'."""
    _baseline(scored_evaluation(_another_run(completed_run), small_set, [True] * 6))
    partial = scored_evaluation(completed_run, small_set, [False] * 2)
    response = key_client(trainer).post("/api/regression/check", {"baseline": "gate", "run_id":
                                                                  str(completed_run.pk)}, format="json")
    assert response.status_code == 409 and "item limit" in response.json()["detail"]
    assert str(partial.pk) in response.json()["detail"]


@pytest.mark.django_db
def test_run_id_picks_the_runs_latest_comparable_evaluation_not_its_latest(completed_run, small_set, base, capsys):
    _baseline(base)
    comparable = scored_evaluation(completed_run, small_set, BASE)
    scored_evaluation(completed_run, small_set, [False] * 3)  # newer, but of the first 3 items only
    call_command("regression_check", "--baseline", "gate", "--run", str(completed_run.pk))  # exit 0: pass
    assert RegressionCheck.objects.get().evaluation == comparable
    assert '"result": "pass"' in capsys.readouterr().out


@pytest.mark.django_db
def test_the_command_exits_2_when_the_run_has_no_comparable_evaluation(completed_run, small_set, base, capsys):
    _baseline(base)
    other = _another_run(completed_run)
    scored_evaluation(other, small_set, [True] * 3)
    with pytest.raises(SystemExit) as exited:
        call_command("regression_check", "--baseline", "gate", "--run", str(other.pk))
    assert exited.value.code == 2
    assert "item limit: all items (baseline) vs the first 3" in capsys.readouterr().err
    assert not RegressionCheck.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("current", "decision", "tolerance", "result"), [
    (BASE, "paired_ci", 0.0, "pass"),                                  # identical: interval [0, 0]
    ([True] * 6, "paired_ci", 0.0, "pass"),                            # better on every differing item
    ([True, True, False, True, False, False], "paired_ci", 0.0, "fail"),  # same point value, but could be worse
    ([True, True, False, True, False, False], "point", 0.0, "pass"),
    ([True, True, False, True, False, False], "paired_ci", 0.5, "pass"),
])
def test_the_paired_ci_decision_passes_only_when_the_worse_end_is_within_the_tolerance(
        completed_run, small_set, base, current, decision, tolerance, result):
    check = regression_check(baseline=_baseline(base, decision=decision, tolerance=tolerance),
                             evaluation=scored_evaluation(completed_run, small_set, current))
    assert (check.decision, check.result) == (decision, result)
    if decision == "paired_ci":
        assert check.details["worse_by"] == pytest.approx(-check.paired_ci_low)


@pytest.mark.django_db
def test_a_check_reports_its_paired_items_and_minimum_detectable_effect(trainer, completed_run, small_set, base):
    _baseline(base)
    current = scored_evaluation(completed_run, small_set, [True] * 4 + [False] * 2)
    body = key_client(trainer).post("/api/regression/check", {"baseline": "gate", "evaluation_id": str(current.pk)},
                                    format="json").json()
    assert body["paired_items"] == 6 and body["decision"] == "point"
    # differences [0, 0, 0, +1, 0, 0]: sd √(1/6), MDE = (1.96 + 0.84) · sd / √6 = 0.467
    assert body["minimum_detectable_effect"] == pytest.approx(0.467, abs=0.001)


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "field"), [
    ({"name": "gate:reasoner:champion"}, "name"),
    ({"name": "mine", "decision": "paired_ci", "metric": "stopped_rate"}, "decision"),
    ({"name": "mine", "decision": "vibes"}, "decision"),
])
def test_baselines_in_the_gates_namespace_or_with_a_bad_decision_are_refused(trainer, base, body, field):
    response = key_client(trainer).post("/api/regression/baselines", {"evaluation_id": str(base.pk), **body},
                                        format="json")
    assert response.status_code == 400 and field in response.json()["detail"], response.content
    assert not RegressionBaseline.objects.exists()
