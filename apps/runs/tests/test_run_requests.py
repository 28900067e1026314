"""POST /api/tunix/run: a validated plan by default, a queued run with dry_run false, and bad input
refused with every problem named and nothing stored."""

import pytest

from apps.core.testing import key_client, tasks_not_sent
from apps.runs.models import TrainingRun
from apps.runs.testing import tiny_config


def _post(client, **body):
    return client.post("/api/tunix/run", body, format="json")


@pytest.mark.django_db
def test_a_dry_run_reports_the_plan_and_stores_nothing(trainer, dataset):
    response = _post(key_client(trainer), dataset_id=dataset.pk, config=tiny_config())
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["dry_run"] is True and body["valid"] is True
    assert body["dataset"] == {"id": dataset.pk, "content_hash": dataset.content_hash, "split": "train",
                               "examples": dataset.train_count}
    assert body["estimate"]["tokens_per_step"] == 4 * 128 and body["estimate"]["total_tokens"] == 12 * 4 * 128
    assert body["config"]["model"] == "tiny" and len(body["config_hash"]) == 64
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_dry_run_false_queues_a_run_and_answers_its_url(trainer, dataset, django_capture_on_commit_callbacks):
    client = key_client(trainer)
    with tasks_not_sent() as sent, django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _post(client, dataset_id=dataset.pk, config=tiny_config(), dry_run=False)
        assert not sent.called
    assert response.status_code == 202, response.content
    run = TrainingRun.objects.get()
    assert response["Location"] == response.json()["url"] == f"/api/tunix/runs/{run.pk}"
    assert (run.status, run.attempt, run.dataset_content_hash) == ("queued", 0, dataset.content_hash)
    assert run.created_by == trainer and run.config["max_steps"] == 12
    # The launcher task is sent after the commit, once, and the row records that it was sent.
    with tasks_not_sent() as sent:
        for callback in callbacks:
            callback()
    assert [call.args[0] for call in sent.call_args_list] == [(str(run.pk),)]
    run.refresh_from_db()
    assert run.dispatched_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "field"), [
    ({"dataset_id": "nope-v1"}, "dataset_id"),
    ({"config": {**tiny_config(), "learning_rate": 5, "batch_size": 0}}, "config.learning_rate"),
    ({"config": {**tiny_config(), "bogus": 1}}, "config.bogus"),
    ({"config": None}, "config"),
    ({"split": "holdout"}, "split"),
    ({"max_attempts": 0}, "max_attempts"),
    ({"dry_run": "no"}, "dry_run"),
    ({"priority": 1}, "priority"),
    ({"config": {**tiny_config(), "backend": "tunix", "model": "gemma3-1b", "model_dir": "../../etc"}},
     "config.model_dir"),
    ({"config": {**tiny_config(), "backend": "tunix", "model": "gemma3-1b", "model_dir": "/etc"}},
     "config.model_dir"),
])
def test_bad_input_is_a_400_naming_the_field_and_stores_nothing(trainer, dataset, body, field):
    request = {"dataset_id": dataset.pk, "config": tiny_config(), "dry_run": False, **body}
    response = key_client(trainer).post("/api/tunix/run", request, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "validation_error"
    assert field in response.json()["detail"], response.json()
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_every_bad_config_field_is_named_at_once(trainer, dataset):
    config = {**tiny_config(), "learning_rate": 5, "batch_size": 0, "schedule": "sideways"}
    detail = _post(key_client(trainer), dataset_id=dataset.pk, config=config).json()["detail"]
    assert {"config.learning_rate", "config.batch_size", "config.schedule"} <= set(detail)


@pytest.mark.django_db
def test_an_empty_split_is_refused(trainer, dataset):
    response = _post(key_client(trainer), dataset_id=dataset.pk, config=tiny_config(), split="test")
    assert response.status_code == 400 and "split" in response.json()["detail"]


@pytest.mark.django_db
def test_a_read_key_cannot_start_a_run(trainer, dataset):
    response = _post(key_client(trainer, "read"), dataset_id=dataset.pk, config=tiny_config(), dry_run=False)
    assert response.status_code == 403
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_a_viewer_cannot_start_a_run(viewer, dataset):
    response = _post(key_client(viewer), dataset_id=dataset.pk, config=tiny_config(), dry_run=False)
    assert response.status_code == 403 and "runs.add_trainingrun" in response.json()["detail"]
