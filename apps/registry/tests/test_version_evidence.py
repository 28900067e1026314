"""A version's metrics are tied to its weights: only server evaluations of the checkpoint step it copied,
on the whole eval set, and once it has metrics only a newer comparable one replaces them. A version
without such an evaluation gets one queued when it is promoted."""

from unittest import mock

import pytest

from apps.core.testing import key_client
from apps.evaluations.models import Evaluation
from apps.evaluations.signals import evaluation_finished
from apps.evaluations.tests.factories import scored_evaluation
from apps.registry.models import ModelVersion, RegisteredModel


@pytest.fixture
def reasoner(trainer):
    return RegisteredModel.objects.create(name="reasoner", created_by=trainer)


@pytest.fixture(autouse=True)
def no_dispatch():
    with mock.patch("apps.evaluations.services.enqueue_evaluation"):
        yield


def _promote(user, run):
    response = key_client(user).post("/api/models/reasoner/versions/promote", {"run_id": str(run.pk)}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _landed(evaluation):
    evaluation_finished.send(sender=Evaluation, evaluation_id=evaluation.pk, status="completed")


@pytest.mark.django_db
def test_a_version_takes_its_metrics_from_a_whole_set_evaluation_of_its_checkpoint(trainer, reasoner, completed_run,
                                                                                  small_set):
    full = scored_evaluation(completed_run, small_set, [True] * 3 + [False] * 3)
    scored_evaluation(completed_run, small_set, [True] * 4)  # newer, but the first 4 items only
    body = _promote(trainer, completed_run)
    assert body["checkpoint_step"] == 30 and body["metrics_evaluation_id"] == str(full.pk)
    assert body["answer_accuracy"] == 0.5 and body["evidence"] == {"status": "measured", "evaluation_id": str(full.pk)}


@pytest.mark.django_db
@pytest.mark.parametrize("newer", [
    lambda run, s: scored_evaluation(run, s, [False] * 4),                                    # limit 4 (the "10")
    lambda run, s: scored_evaluation(run, s, [False] * 6, checkpoint_step=15),               # another checkpoint
    lambda run, s: scored_evaluation(run, s, [True] * 6, source="imported"),                 # a client's word
    lambda run, s: scored_evaluation(run, s, [False] * 6, judge_names=("answer_exact", "format",
                                                                       "reasoning_checks")),  # other judges
])
def test_a_versions_metrics_survive_a_newer_evaluation_of_another_slice_step_source_or_judges(
        trainer, reasoner, completed_run, small_set, newer):
    full = scored_evaluation(completed_run, small_set, [True] * 3 + [False] * 3)
    version_id = _promote(trainer, completed_run)["id"]
    _landed(newer(completed_run, small_set))
    version = ModelVersion.objects.get(pk=version_id)
    assert version.metrics_evaluation_id == full.pk and version.metrics["answer_accuracy"] == 0.5


@pytest.mark.django_db
def test_a_newer_comparable_evaluation_replaces_them_and_only_when_it_completed(trainer, reasoner, completed_run,
                                                                                small_set):
    first = scored_evaluation(completed_run, small_set, [True] * 3 + [False] * 3)
    version_id = _promote(trainer, completed_run)["id"]
    failed = scored_evaluation(completed_run, small_set, [False] * 6)
    Evaluation.objects.filter(pk=failed.pk).update(status="failed")
    evaluation_finished.send(sender=Evaluation, evaluation_id=failed.pk, status="failed")
    assert ModelVersion.objects.get(pk=version_id).metrics_evaluation_id == first.pk
    newer = scored_evaluation(completed_run, small_set, [True] * 6)
    _landed(newer)
    version = ModelVersion.objects.get(pk=version_id)
    assert version.metrics_evaluation_id == newer.pk and version.metrics["answer_accuracy"] == 1.0


@pytest.mark.django_db
def test_a_version_without_evidence_gets_a_whole_set_evaluation_of_its_checkpoint_queued(trainer, reasoner,
                                                                                        completed_run, small_set):
    scored_evaluation(completed_run, small_set, [True] * 2)  # only a slice
    body = _promote(trainer, completed_run)
    assert body["answer_accuracy"] is None and body["metrics_evaluation_id"] is None
    queued = Evaluation.objects.get(status="queued")
    assert (queued.run_id, queued.checkpoint_step, queued.eval_set_id, queued.limit, queued.source) == (
        completed_run.pk, 30, "small-v1", None, "server")
    assert body["evidence"] == {"status": "pending", "evaluation_id": str(queued.pk)}
    # When it lands, the version has its numbers.
    Evaluation.objects.filter(pk=queued.pk).delete()
    done = scored_evaluation(completed_run, small_set, [True] * 5 + [False])
    _landed(done)
    assert key_client(trainer).get(f"/api/models/versions/{body['id']}").json()["evidence"] == {
        "status": "measured", "evaluation_id": str(done.pk)}


@pytest.mark.django_db
def test_with_no_known_eval_set_nothing_is_queued_and_the_version_says_so(trainer, reasoner, completed_run, settings):
    settings.AUTO_EVAL_SET = "eval-v1"  # not loaded in these tests
    body = _promote(trainer, completed_run)
    assert body["evidence"] == {"status": "none", "evaluation_id": None}
    assert not Evaluation.objects.exists()
