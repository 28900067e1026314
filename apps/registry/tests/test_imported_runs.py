"""The issue's case end to end: a run imported with predictions for 2 of the eval set's items, all
hand-written as correct. It is stored as imported, never ranked with server evaluations, cannot move the
champion, and promoting it takes a checkpoint that really loads (a junk one is a 409); the version's
metrics then come only from a server evaluation of that checkpoint."""

import io
import json
import tarfile
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.testing import key_client
from apps.evaluations.launcher import evaluation_launch
from apps.evaluations.models import Evaluation
from apps.evaluations.tests.factories import scored_evaluation
from apps.registry.models import ModelAlias, ModelVersion, RegisteredModel
from apps.registry.services import model_version_promote
from apps.runs.models import TrainingRun


def _tar_of(folder=None, files=None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        if folder is not None:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    tar.add(path, arcname=path.relative_to(folder).as_posix())
        for name, data in (files or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _import(user, dataset, small_set, archive: bytes):
    items = list(small_set.items.order_by("position"))[:2]
    run = {"dataset_id": dataset.pk, "dataset_content_hash": dataset.content_hash, "steps_completed": 30,
           "config": {"backend": "builtin", "model": "tiny", "max_steps": 30, "max_seq_len": 128}}
    predictions = "".join(json.dumps({"id": item.item_id, "output": f"<reasoning>r</reasoning><answer>"
                                      f"{item.expected_answer}</answer>"}) + "\n" for item in items)
    response = key_client(user).post("/api/tunix/runs/import", {
        "run": json.dumps(run), "evaluation": json.dumps({"eval_set": small_set.pk}),
        "predictions": SimpleUploadedFile("p.jsonl", predictions.encode()),
        "archive": SimpleUploadedFile("out.tar.gz", archive)}, format="multipart")
    assert response.status_code == 201, response.content
    return TrainingRun.objects.get(pk=response.json()["run"]["id"]), response.json()


@pytest.fixture
def reasoner(trainer):
    return RegisteredModel.objects.create(name="reasoner", created_by=trainer)


@pytest.mark.django_db
def test_a_two_item_import_is_labelled_and_ranked_only_among_imports(trainer, viewer, dataset, small_set,
                                                                     completed_run):
    server = scored_evaluation(completed_run, small_set, [True] * 2 + [False] * 4)
    run, body = _import(trainer, dataset, small_set, _tar_of(files={"checkpoints/20/x": b"0123456789abcdef"}))
    assert (body["evaluation"]["source"], body["evaluation"]["primary_score"], body["evaluation"]["limit"]) == (
        "imported", 1.0, 2)
    client = key_client(viewer)
    default = client.get("/api/tunix/evaluations").json()["results"]
    assert [row["evaluation_id"] for row in default] == [str(server.pk)]
    rows = {row["evaluation_id"]: row for row in client.get("/api/tunix/evaluations?source=all").json()["results"]}
    imported = rows[body["evaluation"]["id"]]
    assert (imported["source"], imported["rank"], imported["group"]["source"], imported["group"]["limit"]) == (
        "imported", 1, "imported", 2)
    assert rows[str(server.pk)]["rank"] == 1 and rows[str(server.pk)]["group"]["source"] == "server"


@pytest.mark.django_db
def test_promoting_an_import_with_a_junk_checkpoint_is_refused(trainer, reasoner, dataset, small_set, tmp_path):
    run, _ = _import(trainer, dataset, small_set, _tar_of(files={"run_config.json": b"{}",
                                                                 "checkpoints/20/x": b"0123456789abcdef"}))
    response = key_client(trainer).post("/api/models/reasoner/versions/promote", {"run_id": str(run.pk)},
                                        format="json")
    assert response.status_code == 409, response.content
    assert response.json()["error"] == "checkpoint_not_loadable" and "does not load" in response.json()["detail"]
    assert str(tmp_path) not in response.json()["detail"]
    assert not ModelVersion.objects.exists()


@pytest.mark.django_db
def test_a_promoted_import_gets_metrics_only_from_a_server_evaluation_of_its_checkpoint(
        trainer, reasoner, dataset, small_set, trained_out):
    run, body = _import(trainer, dataset, small_set, _tar_of(folder=trained_out))
    with mock.patch("apps.evaluations.services.enqueue_evaluation"):
        response = key_client(trainer).post("/api/models/reasoner/versions/promote", {"run_id": str(run.pk)},
                                            format="json")
    assert response.status_code == 201, response.content
    version = response.json()
    assert version["answer_accuracy"] is None and version["metrics_evaluation_id"] is None  # 1.0 was the client's
    assert version["evidence"]["status"] == "pending"
    queued = Evaluation.objects.get(pk=version["evidence"]["evaluation_id"])
    assert (queued.source, queued.checkpoint_step, queued.limit, queued.item_count) == ("server", 30, None, 6)
    assert evaluation_launch(evaluation_id=queued.pk) == "completed"  # real generation from the loaded weights
    stored = ModelVersion.objects.get(pk=version["id"])
    queued.refresh_from_db()
    assert stored.metrics_evaluation_id == queued.pk and stored.metrics["count"] == 6
    assert stored.metrics["answer_accuracy"] == queued.primary_score


@pytest.mark.django_db
def test_an_import_cannot_move_the_champion(trainer, reasoner, dataset, small_set, completed_run, trained_out):
    scored_evaluation(completed_run, small_set, [False] * 6)
    v1, _ = model_version_promote(model=reasoner, data={"run_id": str(completed_run.pk)})
    run, _ = _import(trainer, dataset, small_set, _tar_of(folder=trained_out))
    with mock.patch("apps.evaluations.services.enqueue_evaluation"):
        v2, _ = model_version_promote(model=reasoner, data={"run_id": str(run.pk)})
    client = key_client(trainer)
    assert client.put("/api/models/reasoner/aliases/champion", {"version": v1.label}, format="json").status_code == 200
    refused = client.put("/api/models/reasoner/aliases/champion", {"version": v2.label}, format="json")
    assert refused.status_code == 409 and refused.json()["error"] == "needs_evaluation"
    assert ModelAlias.objects.get(name="champion").version == v1
