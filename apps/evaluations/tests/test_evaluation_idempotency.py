"""An identical evaluation request (run, checkpoint step, eval set, slice, judges, generation settings)
while one is queued or running answers that one (200 with its id) instead of queueing a twin; ten at
once against PostgreSQL create exactly one."""

import threading
from unittest import mock

import pytest
from django.db import connection

from apps.core.testing import key_client
from apps.evaluations.models import Evaluation


def _post(client, run, **body):
    return client.post(f"/api/tunix/runs/{run.pk}/evaluate", {"eval_set": "small-v1", **body}, format="json")


@pytest.fixture
def no_dispatch():
    with mock.patch("apps.evaluations.services.enqueue_evaluation"):
        yield


@pytest.mark.django_db
def test_an_identical_request_while_one_is_queued_returns_it(trainer, completed_run, small_set, no_dispatch):
    client = key_client(trainer)
    first = _post(client, completed_run, limit=3)
    again = _post(client, completed_run, limit=3)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"] and again["Location"] == first["Location"]
    assert Evaluation.objects.count() == 1


@pytest.mark.django_db
def test_naming_the_latest_step_or_the_whole_set_as_a_limit_is_the_same_request(trainer, completed_run, small_set,
                                                                                no_dispatch):
    client = key_client(trainer)
    first = _post(client, completed_run)
    assert first.json()["checkpoint_step"] == 30 and first.json()["limit"] is None
    assert _post(client, completed_run, checkpoint_step=30).status_code == 200
    assert _post(client, completed_run, limit=6).status_code == 200
    assert Evaluation.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("change", [{"limit": 2}, {"section": "in_distribution"}, {"checkpoint_step": 15},
                                    {"judges": ["llm_judge"]}, {"max_new_tokens": 32}, {"batch_size": 4}])
def test_a_request_that_differs_in_anything_is_queued(trainer, completed_run, small_set, no_dispatch, change):
    client = key_client(trainer)
    assert _post(client, completed_run).status_code == 202
    assert _post(client, completed_run, **change).status_code == 202
    assert Evaluation.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_an_identical_request_after_the_first_ended_is_queued_again(trainer, completed_run, small_set, no_dispatch,
                                                                    status):
    client = key_client(trainer)
    first = _post(client, completed_run)
    Evaluation.objects.filter(pk=first.json()["id"]).update(status=status)
    second = _post(client, completed_run)
    assert second.status_code == 202 and second.json()["id"] != first.json()["id"]


@pytest.mark.django_db
def test_a_version_evaluate_and_a_run_evaluate_of_the_same_weights_are_one_request(trainer, completed_run, small_set,
                                                                                  no_dispatch):
    from apps.registry.models import RegisteredModel
    from apps.registry.services import model_version_promote

    version, _ = model_version_promote(model=RegisteredModel.objects.create(name="reasoner"),
                                       data={"run_id": str(completed_run.pk)})
    client = key_client(trainer)
    through_run = _post(client, completed_run)
    through_version = client.post(f"/api/models/versions/{version.pk}/evaluate", {"eval_set": "small-v1"},
                                  format="json")
    assert through_version.status_code == 200 and through_version.json()["id"] == through_run.json()["id"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_ten_concurrent_identical_requests_create_one_evaluation(trainer, completed_run, small_set, no_dispatch):
    clients = [key_client(trainer) for _ in range(10)]
    barrier = threading.Barrier(len(clients))
    answers = []

    def request(client):
        try:
            barrier.wait(timeout=30)
            response = _post(client, completed_run, judges=["reasoning_checks"])
            answers.append((response.status_code, response.json().get("id")))
        finally:
            connection.close()

    threads = [threading.Thread(target=request, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert Evaluation.objects.count() == 1
    assert sorted(code for code, _ in answers) == [200] * 9 + [202]
    assert {evaluation_id for _, evaluation_id in answers} == {str(Evaluation.objects.get().pk)}
