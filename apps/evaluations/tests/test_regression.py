"""Regression baselines and checks: better, equal, worse within and beyond the tolerance, a
lower-is-better metric, the paired interval, the CI command's exit codes, and bad input."""

import pytest
from django.core.management import call_command

from apps.core.testing import key_client
from apps.evaluations.models import RegressionBaseline, RegressionCheck
from apps.evaluations.services import baseline_create, regression_check

from .conftest import SMALL_ITEMS, make_eval_set
from .factories import scored_evaluation

BASE = [True, True, True, False, False, False]  # 50 %


@pytest.fixture
def base(completed_run, small_set):
    return scored_evaluation(completed_run, small_set, BASE)


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
def test_a_relative_tolerance_scales_with_the_baseline(completed_run, small_set, base):
    worse = scored_evaluation(completed_run, small_set, [True, True, False, False, False, False])
    assert regression_check(baseline=_baseline(base, tolerance=0.4, tolerance_mode="relative"),
                            evaluation=worse).result == "pass"  # 1/6 <= 0.4 * 0.5


@pytest.mark.django_db
def test_a_lower_is_better_metric_fails_when_it_rises(completed_run, small_set, base):
    baseline = baseline_create(data={"name": "errors", "evaluation_id": str(base.pk), "metric": "answer_accuracy",
                                     "lower_is_better": True})
    higher = scored_evaluation(completed_run, small_set, [True] * 4 + [False] * 2)
    assert regression_check(baseline=baseline, evaluation=higher).result == "fail"


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
    with pytest.raises(Exception) as raised:
        regression_check(baseline=_baseline(base), evaluation=scored_evaluation(completed_run, other, BASE))
    assert "not comparable" in str(raised.value)
    assert not RegressionCheck.objects.exists()
