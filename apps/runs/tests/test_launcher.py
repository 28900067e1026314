"""The launcher, called as the Celery task would call it (in this process, against the test database):
a fresh trainer process, relayed log lines and metrics, artifacts with sha256, one final state."""

from unittest import mock

import pytest

from apps.core.testing import key_client
from apps.runs import storage
from apps.runs.launcher import Relay, training_run_launch
from apps.runs.models import RunArtifact, RunLogLine, RunMetric, TrainingRun
from apps.runs.services import training_run_plan, training_run_submit
from apps.runs.testing import tiny_config
from training.run_files import file_sha256, read_metrics


def _submit(user, dataset, **config):
    plan, _ = training_run_plan(data={"dataset_id": dataset.pk, "config": tiny_config(**config)}, user=user)
    return training_run_submit(plan=plan, user=user)


@pytest.mark.django_db
def test_a_tiny_run_completes_with_logs_metrics_and_artifacts(trainer, dataset):
    run = _submit(trainer, dataset)
    status = training_run_launch(run_id=run.pk)
    run.refresh_from_db()
    assert status == "completed", (run.error, list(RunLogLine.objects.filter(run=run).values_list("text", flat=True)))
    assert (run.status, run.attempt, run.steps_completed) == ("completed", 1, 12)
    assert run.final_loss is not None and run.tokens_per_s > 0 and run.mfu_estimate > 0
    assert run.device["platform"] == "cpu" and run.code_version["training_package"]
    assert list(RunMetric.objects.filter(run=run).values_list("step", flat=True)) == list(range(1, 13))
    lines = list(RunLogLine.objects.filter(run=run).values_list("seq", "stream", "text"))
    assert [seq for seq, _, _ in lines] == list(range(1, len(lines) + 1))
    assert any("checkpoint saved at step 12" in text for _, _, text in lines)
    checkpoint = RunArtifact.objects.filter(run=run, kind="checkpoint").first()
    assert checkpoint is not None
    path = storage.RunPaths.of(run).out / checkpoint.name
    assert file_sha256(path) == checkpoint.sha256 and path.stat().st_size == checkpoint.size_bytes
    assert RunArtifact.objects.filter(run=run, name="run_manifest.json").exists()


@pytest.mark.django_db
def test_the_same_task_delivered_twice_trains_once(trainer, dataset):
    run = _submit(trainer, dataset)
    assert training_run_launch(run_id=run.pk) == "completed"
    lines = RunLogLine.objects.filter(run=run).count()
    assert training_run_launch(run_id=run.pk) is None
    assert RunLogLine.objects.filter(run=run).count() == lines
    assert TrainingRun.objects.get(pk=run.pk).attempt == 1


@pytest.mark.django_db
def test_a_trainer_input_error_fails_the_run_with_the_reason(trainer, dataset):
    run = _submit(trainer, dataset)
    TrainingRun.objects.filter(pk=run.pk).update(config={**run.config, "max_seq_len": 8})  # below the minimum
    assert training_run_launch(run_id=run.pk) == "failed"
    run.refresh_from_db()
    assert run.error_code == "trainer_input_error" and "max_seq_len" in run.error


@pytest.mark.django_db
def test_a_finished_runs_progress_equals_its_steps(trainer, dataset):
    run = _submit(trainer, dataset)
    training_run_launch(run_id=run.pk)
    body = key_client(trainer).get(f"/api/tunix/runs/{run.pk}").json()
    assert body["progress"] == {"done": 12, "total": 12} and body["steps_completed"] == 12


@pytest.mark.django_db
def test_steps_the_relay_never_wrote_are_caught_up_from_the_run_folder(trainer, dataset):
    """What a lost attempt's worker trained and checkpointed but never relayed (it died between flushes,
    or the database was away) is in the database when the run ends, read from metrics.jsonl."""
    run = _submit(trainer, dataset)
    relayed = Relay.metric

    def drop_some(relay, event):
        if not 5 <= event["step"] <= 7:
            relayed(relay, event)

    with mock.patch.object(Relay, "metric", drop_some):
        assert training_run_launch(run_id=run.pk) == "completed"
    stored = dict(RunMetric.objects.filter(run=run).values_list("step", "loss"))
    on_disk = {line["step"]: line["loss"] for line in read_metrics(storage.RunPaths.of(run).out / "metrics.jsonl")}
    assert sorted(stored) == list(range(1, 13)) and stored == on_disk
