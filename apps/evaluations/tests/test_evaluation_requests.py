"""POST /api/tunix/runs/{id}/evaluate: queued for a completed run, refused with a clear 4xx (and
nothing stored) for a run that has not completed, an unknown eval set, judge, section or checkpoint."""

import pytest

from apps.core.testing import key_client
from apps.evaluations.models import Evaluation
from apps.runs.models import TrainingRun


def _post(user, run, **body):
    return key_client(user).post(f"/api/tunix/runs/{run.pk}/evaluate", body, format="json")


@pytest.mark.django_db
def test_a_completed_run_is_queued_for_evaluation(trainer, completed_run, small_set,
                                                  django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        response = _post(trainer, completed_run, eval_set="small-v1", judges=["reasoning_checks"])
    assert response.status_code == 202, response.content
    evaluation = Evaluation.objects.get()
    assert response["Location"] == f"/api/evaluations/{evaluation.pk}"
    assert [j["name"] for j in evaluation.judges] == ["answer_exact", "format", "reasoning_checks"]
    assert (evaluation.status, evaluation.item_count, evaluation.eval_set_hash) == ("queued", 6, small_set.content_hash)


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "field"), [
    ({"eval_set": "nope-v9"}, "eval_set"),
    ({}, "eval_set"),
    ({"eval_set": "small-v1", "judges": ["vibes"]}, "judges"),
    ({"eval_set": "small-v1", "section": "held_out"}, "section"),
    ({"eval_set": "small-v1", "limit": 0}, "limit"),
    ({"eval_set": "small-v1", "checkpoint_step": 7}, "checkpoint_step"),
    ({"eval_set": "small-v1", "max_new_tokens": 100000}, "max_new_tokens"),
    ({"eval_set": "small-v1", "temperature": 1}, "temperature"),
])
def test_bad_input_is_a_400_naming_the_field(trainer, completed_run, small_set, body, field):
    response = _post(trainer, completed_run, **body)
    assert response.status_code == 400, response.content
    assert field in response.json()["detail"]
    assert not Evaluation.objects.exists()


@pytest.mark.django_db
def test_a_run_that_has_not_completed_is_a_conflict(trainer, completed_run, small_set):
    TrainingRun.objects.filter(pk=completed_run.pk).update(status="running")
    response = _post(trainer, completed_run, eval_set="small-v1")
    assert response.status_code == 409 and response.json()["error"] == "run_not_completed"
    assert not Evaluation.objects.exists()


@pytest.mark.django_db
def test_a_viewer_cannot_evaluate(viewer, completed_run, small_set):
    assert _post(viewer, completed_run, eval_set="small-v1").status_code == 403
