"""Runs through a real Celery worker on the `train` queue (Redis broker, PostgreSQL): completion,
a SIGKILL of the worker and its trainer mid-run with an exact resume on another host through the
artifact store, cancellation, and the log stream followed across a reconnect."""

import os
import re
import time

import pytest

from apps.core.jobs import jobs_reap_all
from apps.core.testing import celery_worker, key_client, wait_for
from apps.runs.models import RunArtifact, RunLogLine, RunMetric, TrainingRun
from apps.runs.testing import tiny_config

LONG = tiny_config(max_steps=300, checkpoint_every=25)
FOLLOWED_STEPS = 150  # the follower reconnects after 3 lines: the run must still have most of its lines to send


def _start(client, dataset, config) -> TrainingRun:
    response = client.post("/api/tunix/run", {"dataset_id": dataset.pk, "config": config, "dry_run": False},
                           format="json")
    assert response.status_code == 202, response.content
    return TrainingRun.objects.get(pk=response.json()["id"])


def _status(run) -> str:
    return TrainingRun.objects.values_list("status", flat=True).get(pk=run.pk)


def _last_step(run) -> int:
    return RunMetric.objects.filter(run=run).order_by("-step").values_list("step", flat=True).first() or 0


def _wait_done(run, worker, timeout=180):
    try:
        wait_for(lambda: _status(run) in ("completed", "failed", "cancelled"), timeout=timeout, interval=0.5)
    except AssertionError:
        pytest.fail(f"run {run.pk} still {_status(run)}:\n{worker.output()}")


def _progress(client, run) -> int:
    progress = client.get(f"/api/tunix/runs/{run.pk}").json()["progress"]
    assert progress["total"] in (None, run.max_steps), progress
    return progress["done"]


def _trainer_pid(run) -> int:
    text = RunLogLine.objects.filter(run=run, text__startswith="trainer started").latest("seq").text
    return int(re.search(r"pid (\d+)", text).group(1))


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie (killed, not yet reaped by init) counts as gone.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ")[1].startswith("Z")


def _host(folder, store_url) -> dict:
    return {"TUNIXRT_DATA_DIR": str(folder), "TUNIXRT_RUNS_DIR": str(folder / "runs"), "ARTIFACT_STORE_URL": store_url}


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_killed_worker_resumes_on_another_host_from_the_store_to_the_uninterrupted_losses(trainer, dataset,
                                                                                            settings, tmp_path):
    """The retry runs on a machine with an empty scratch folder: it resumes from the checkpoint the lost
    attempt uploaded to the shared store, and ends with the same losses, to the float, as a run never
    interrupted."""
    settings.ARTIFACT_STORE_URL = store = str(tmp_path / "shared")
    client = key_client(trainer)
    with celery_worker("train", env=_host(tmp_path / "host-a", store)) as worker:
        crashed = _start(client, dataset, LONG)
        try:
            wait_for(lambda: _last_step(crashed) >= 60 and RunArtifact.objects.filter(
                run=crashed, name__startswith="checkpoints/").exists(), timeout=120, interval=0.2)
        except AssertionError:
            pytest.fail("no progress:\n" + worker.output())
        trainer_pid = _trainer_pid(crashed)
        worker.kill()
    wait_for(lambda: _gone(trainer_pid), timeout=10)  # PR_SET_PDEATHSIG took the trainer down with it
    assert _status(crashed) == "running" and _last_step(crashed) < 300

    wait_for(lambda: jobs_reap_all(stale_seconds=2)["training_run"]["requeued"] == 1, timeout=30)
    with celery_worker("train", purge=False, env=_host(tmp_path / "host-b", store)) as worker:
        _wait_done(crashed, worker)
        reference = _start(client, dataset, LONG)
        _wait_done(reference, worker)

    crashed.refresh_from_db()
    reference.refresh_from_db()
    assert (crashed.status, crashed.attempt, crashed.steps_completed) == ("completed", 2, 300)
    fetched = RunLogLine.objects.get(run=crashed, text__startswith="fetched ").text
    assert "from the artifact store (checkpoint " in fetched and "(checkpoint None)" not in fetched
    assert crashed.final_loss == reference.final_loss  # to the float
    losses = list(RunMetric.objects.filter(run=crashed).order_by("step").values_list("step", "loss"))
    assert losses == list(RunMetric.objects.filter(run=reference).order_by("step").values_list("step", "loss"))
    seqs = list(RunLogLine.objects.filter(run=crashed).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert RunLogLine.objects.filter(run=crashed, text__contains="attempt 2 of 3").exists()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_running_run_is_cancelled_within_ten_seconds_and_keeps_its_checkpoint(trainer, dataset):
    client = key_client(trainer)
    with celery_worker("train") as worker:
        run = _start(client, dataset, tiny_config(max_steps=100_000, checkpoint_every=1000))
        try:
            wait_for(lambda: _last_step(run) > 0, timeout=120, interval=0.2)
        except AssertionError:
            pytest.fail("no progress:\n" + worker.output())
        asked = time.monotonic()
        assert client.post(f"/api/tunix/runs/{run.pk}/cancel").status_code == 202
        wait_for(lambda: _status(run) == "cancelled", timeout=10, interval=0.2)
        waited = time.monotonic() - asked
    run.refresh_from_db()
    assert run.steps_completed > 0 and run.error_code == "cancelled", waited
    assert RunArtifact.objects.filter(run=run, kind="checkpoint",
                                      name__startswith=f"checkpoints/{run.steps_completed}/").exists()
    assert client.post(f"/api/tunix/runs/{run.pk}/cancel").status_code == 409  # already finished


def _events(response, stop_after: int | None = None) -> list[tuple[str, str]]:
    """(id, event kind) pairs read from an SSE response, up to `stop_after` log events."""
    found, logs, buffer = [], 0, ""
    for chunk in response.streaming_content:
        buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
            if "event" in fields:
                found.append((fields["id"], fields["event"], fields["data"]))
                logs += fields["event"] == "log"
        if stop_after is not None and logs >= stop_after:
            break
    response.close()
    return found


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_follower_that_reconnects_with_last_event_id_gets_every_line_once(trainer, dataset):
    import json

    client = key_client(trainer)
    with celery_worker("train") as worker:
        run = _start(client, dataset, tiny_config(max_steps=FOLLOWED_STEPS, checkpoint_every=50))
        wait_for(lambda: RunLogLine.objects.filter(run=run).count() >= 3, timeout=120, interval=0.2)
        first = _events(client.get(f"/api/tunix/runs/{run.pk}/logs"), stop_after=3)
        last_id = first[-1][0]
        rest = _events(client.get(f"/api/tunix/runs/{run.pk}/logs", HTTP_LAST_EVENT_ID=last_id))
        _wait_done(run, worker)
    # While it trained the stream above took its time; the run's progress, read the same way, only grows.
    final = client.get(f"/api/tunix/runs/{run.pk}").json()
    total = FOLLOWED_STEPS
    assert final["progress"] == {"done": total, "total": total} == {"done": final["steps_completed"], "total": total}
    seen = [json.loads(data)["seq"] for _, kind, data in first + rest if kind == "log"]
    assert seen == list(RunLogLine.objects.filter(run=run).order_by("seq").values_list("seq", flat=True))
    steps = [json.loads(data)["step"] for _, kind, data in first + rest if kind == "metric"]
    assert steps == list(range(1, total + 1))
    assert [kind for _, kind, _ in rest][-1] == "status" and '"completed"' in rest[-1][2]


GRPO_LONG = {"max_steps": 30, "prompts_per_step": 2, "group_size": 4, "max_new_tokens": 32, "learning_rate": 1e-3,
             "checkpoint_every": 5, "sample_every": 5, "seed": 0}


def _start_grpo(client, parent) -> TrainingRun:
    response = client.post("/api/tunix/run", {
        "dataset_id": parent.dataset_version_id, "algorithm": "grpo", "init_from": {"run": str(parent.pk)},
        "reward": {"judges": {"answer_exact": 1.0, "format": 0.5}}, "config": GRPO_LONG, "dry_run": False,
        "auto_evaluate": False}, format="json")
    assert response.status_code == 202, response.content
    return TrainingRun.objects.get(pk=response.json()["id"])


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_grpo_run_whose_worker_is_killed_resumes_to_the_uninterrupted_weights(trainer, completed_run):
    """kill -9 of the worker mid-GRPO (its trainer dies with it), the reaper, a fresh worker: the run resumes
    from its last checkpoint and ends with the rewards, losses and weights of a run never interrupted."""
    import numpy as np

    from apps.runs.storage import RunPaths
    from training.generate import load_model

    client = key_client(trainer)
    with celery_worker("train") as worker:
        crashed = _start_grpo(client, completed_run)
        try:
            wait_for(lambda: _last_step(crashed) >= 12, timeout=120, interval=0.2)
        except AssertionError:
            pytest.fail("no progress:\n" + worker.output())
        trainer_pid = _trainer_pid(crashed)
        worker.kill()
    wait_for(lambda: _gone(trainer_pid), timeout=10)
    assert _status(crashed) == "running" and _last_step(crashed) < 30

    wait_for(lambda: jobs_reap_all(stale_seconds=2)["training_run"]["requeued"] == 1, timeout=30)
    with celery_worker("train", purge=False) as worker:
        _wait_done(crashed, worker)
        reference = _start_grpo(client, completed_run)
        _wait_done(reference, worker)

    crashed.refresh_from_db()
    assert (crashed.status, crashed.attempt, crashed.steps_completed) == ("completed", 2, 30)
    assert RunLogLine.objects.filter(run=crashed, text__startswith="resumed from checkpoint at step").exists()

    def steps(run):
        return [(row.step, row.loss, row.values["reward_mean"], row.values["kl"])
                for row in RunMetric.objects.filter(run=run).order_by("step")]

    assert steps(crashed) == steps(reference)  # to the float
    resumed, uninterrupted = (load_model(RunPaths.of(run).out).params for run in (crashed, reference))
    leaves = zip(*(jax_leaves(tree) for tree in (resumed, uninterrupted)), strict=True)
    assert all(np.array_equal(a, b) for a, b in leaves)


def jax_leaves(tree) -> list:
    import jax
    import numpy as np

    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(tree)]
