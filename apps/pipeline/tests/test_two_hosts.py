"""Web and workers on different machines, sharing only the database, the broker and the artifact store:
each "host" is a process with its own data folder. A run trained on one worker host is evaluated on
another that never saw it, its artifact downloaded and its checkpoint promoted and downloaded through the
web, and a run imported through the web is evaluated on a worker: every file travels through the store,
once through a shared folder and once through S3 (moto's emulator)."""

import hashlib
import io
import json
import tarfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.testing import celery_worker, key_client, wait_for
from apps.evaluations.models import Evaluation, Prediction
from apps.registry.models import RegisteredModel
from apps.runs.models import RunArtifact, TrainingRun
from apps.runs.storage import RunPaths
from apps.runs.testing import tiny_config


def _host(folder, store_url) -> dict:
    """The settings a worker on another machine starts with: its own folders, the shared store."""
    return {"TUNIXRT_DATA_DIR": str(folder), "TUNIXRT_RUNS_DIR": str(folder / "runs"),
            "TUNIXRT_DATASETS_DIR": str(folder / "datasets"), "ARTIFACT_STORE_URL": store_url}


def _final(model, pk, worker, timeout=240):
    try:
        wait_for(lambda: model.objects.get(pk=pk).status in ("completed", "failed", "cancelled"), timeout=timeout,
                 interval=0.5)
    except AssertionError:
        pytest.fail(f"{model.__name__} {pk} did not finish:\n{worker.output()}")
    row = model.objects.get(pk=pk)
    assert row.status == "completed", (row.error, worker.output())
    return row


def _evaluate(client, run, worker) -> Evaluation:
    response = client.post(f"/api/tunix/runs/{run.pk}/evaluate", {"eval_set": "small-v1"}, format="json")
    assert response.status_code == 202, response.content
    return _final(Evaluation, response.json()["id"], worker)


def _archive_members(body: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def _tar_of(folder) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname="out")
    return buffer.getvalue()


@pytest.fixture(params=["shared folder", "s3 emulator"])
def store_url(request, settings, tmp_path):
    url = str(tmp_path / "shared") if request.param == "shared folder" else request.getfixturevalue("s3_store_url")
    settings.ARTIFACT_STORE_URL = url  # the web's side (this test process)
    return url


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_train_evaluate_download_promote_and_import_across_hosts(store_url, trainer, dataset, small_set, tmp_path):
    client = key_client(trainer)
    trainer_host, eval_host = tmp_path / "trainer-host", tmp_path / "eval-host"
    with celery_worker("train", env=_host(trainer_host, store_url)) as worker:
        response = client.post("/api/tunix/run", {"dataset_id": dataset.pk, "dry_run": False,
                                                  "config": tiny_config(max_steps=20, checkpoint_every=10)},
                               format="json")
        assert response.status_code == 202, response.content
        run = _final(TrainingRun, response.json()["id"], worker)
    scratch = trainer_host / "runs" / run.folder_name / "out"
    assert not RunPaths.of(run).root.exists()  # the web host never held the run's folder

    with celery_worker("eval", env=_host(eval_host, store_url)) as worker:
        evaluation = _evaluate(client, run, worker)
        assert Prediction.objects.filter(evaluation=evaluation).count() == 6
        assert (eval_host / "runs" / run.folder_name / "out" / "checkpoints" / "20").is_dir()  # fetched

        download = client.get(f"/api/tunix/runs/{run.pk}/artifacts/metrics.jsonl/download")
        assert download.status_code == 200
        assert b"".join(download.streaming_content) == (scratch / "metrics.jsonl").read_bytes()

        RegisteredModel.objects.create(name="reasoner", created_by=trainer)
        promoted = client.post("/api/models/reasoner/versions/promote", {"run_id": str(run.pk)}, format="json")
        assert promoted.status_code == 201, promoted.content
        archive = client.get(f"/api/models/versions/{promoted.json()['id']}/download")
        body = b"".join(archive.streaming_content)
        assert archive.status_code == 200 and int(archive["Content-Length"]) == len(body)
        members = _archive_members(body)
        manifest = json.loads(members.pop("MODEL_MANIFEST.json"))
        assert set(members) == {f["path"] for f in manifest["files"]} and "checkpoints/20/" in " ".join(members)
        # Byte for byte what the trainer wrote on its own host, after two hops through the store.
        assert all(data == (scratch / path).read_bytes() for path, data in members.items())

        imported = client.post("/api/tunix/runs/import", {
            "run": json.dumps({"dataset_id": dataset.pk, "dataset_content_hash": dataset.content_hash,
                               "steps_completed": 20, "config": tiny_config(max_steps=20)}),
            "archive": SimpleUploadedFile("out.tar.gz", _tar_of(scratch)),
        }, format="multipart")
        assert imported.status_code == 201, imported.content
        imported_run = TrainingRun.objects.get(pk=imported.json()["run"]["id"])
        for artifact in RunArtifact.objects.filter(run=imported_run, name__startswith="checkpoints/20/"):
            assert artifact.sha256 == hashlib.sha256((scratch / artifact.name).read_bytes()).hexdigest()
        imported_evaluation = _evaluate(client, imported_run, worker)
    # The same weights through both paths: the same answers.
    outputs = list(Prediction.objects.filter(evaluation=evaluation).order_by("item__position")
                   .values_list("raw_output", flat=True))
    assert outputs == list(Prediction.objects.filter(evaluation=imported_evaluation).order_by("item__position")
                           .values_list("raw_output", flat=True))
