"""Every run endpoint gets the inherited checks of apps.core.testing.EndpointContract: trainers start
and cancel, viewers read, contributors see nothing of runs."""

import pytest

from apps.core.testing import Endpoint, EndpointContract, key_client
from apps.runs.models import RunArtifact, TrainingRun
from apps.runs.services import training_run_plan, training_run_submit
from apps.runs.testing import tiny_config

RUN = "/api/tunix/runs/{run}"
ENDPOINTS = [
    Endpoint("get", "/api/tunix/status", actor="viewer"),
    Endpoint("post", "/api/tunix/run", write=True, actor="trainer",
             body=lambda ids: {"dataset_id": ids["dataset"], "config": tiny_config()}),
    Endpoint("get", "/api/tunix/runs", actor="viewer"),
    Endpoint("get", RUN, has_object=True, actor="viewer"),
    Endpoint("get", RUN + "/status", has_object=True, actor="viewer"),
    Endpoint("get", RUN + "/logs?format=json", has_object=True, actor="viewer"),
    Endpoint("get", RUN + "/metrics", has_object=True, actor="viewer"),
    Endpoint("get", RUN + "/completions", has_object=True, actor="viewer"),
    Endpoint("get", RUN + "/artifacts", has_object=True, actor="viewer"),
    Endpoint("get", RUN + "/artifacts/{artifact}/download", has_object=True, actor="viewer"),
    Endpoint("post", RUN + "/cancel", write=True, has_object=True, actor="trainer", out_of_scope=False),
]


@pytest.fixture
def known(trainer, dataset, data_dirs):
    plan, _ = training_run_plan(data={"dataset_id": dataset.pk, "config": tiny_config()}, user=trainer)
    run = training_run_submit(plan=plan, user=trainer)
    out = data_dirs / "runs" / str(run.pk) / "out"
    out.mkdir(parents=True)
    (out / "metrics.jsonl").write_text("{}\n")
    RunArtifact.objects.create(run=run, name="metrics.jsonl", kind="metrics", size_bytes=3, sha256="0" * 64)
    return {"run": run.pk, "dataset": dataset.pk, "artifact": "metrics.jsonl"}


@pytest.fixture
def unknown(known):
    return {**known, "run": "00000000-0000-4000-8000-000000000000"}


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
class TestRunEndpoints(EndpointContract):
    # Contributors may not see runs at all; objects are 404 for them.
    out_of_scope_actor = "owner"

    def state(self):
        return TrainingRun.objects.count(), TrainingRun.objects.filter(cancel_requested=True).count()


@pytest.mark.django_db
def test_a_contributor_sees_no_runs(owner, known):
    assert key_client(owner).get("/api/tunix/runs").json()["count"] == 0


@pytest.mark.django_db
def test_a_viewer_cannot_cancel(viewer, known):
    response = key_client(viewer).post(f"/api/tunix/runs/{known['run']}/cancel")
    assert response.status_code == 403 and "runs.cancel_trainingrun" in response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["../input/config.yaml", "/etc/passwd", "..%2F..%2Fsecret", "nothing.bin"])
def test_an_artifact_name_outside_the_run_folder_is_404(viewer, known, name):
    response = key_client(viewer).get(f"/api/tunix/runs/{known['run']}/artifacts/{name}/download")
    assert response.status_code == 404


@pytest.mark.django_db
def test_a_recorded_artifact_streams_with_its_sha256(viewer, known):
    response = key_client(viewer).get(f"/api/tunix/runs/{known['run']}/artifacts/metrics.jsonl/download")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"{}\n"
    assert response["X-Artifact-Sha256"] == "0" * 64


@pytest.mark.django_db
def test_the_tunix_status_counts_only_the_runs_its_caller_may_see(owner, viewer, known):
    assert key_client(viewer, "read").get("/api/tunix/status").json()["queue"]["queued"] >= 1
    body = key_client(owner, "read").get("/api/tunix/status").json()
    assert body["queue"] == {"queued": 0, "running": 0} and body["runs_by_status"] == {}
