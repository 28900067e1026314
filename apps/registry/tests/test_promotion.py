"""Promotion: a completed run becomes the next version; the same run again is the same version with
no second copy on disk; labels are validated and unique; a downloaded archive loads for generation."""

import io
import json
import subprocess
import sys
import tarfile

import pytest
from django.conf import settings

from apps.core.testing import key_client
from apps.registry import storage
from apps.registry.models import ModelVersion, RegisteredModel
from apps.registry.tests.factories import copy_of_run
from apps.runs.models import TrainingRun


@pytest.fixture
def reasoner(trainer):
    return RegisteredModel.objects.create(name="reasoner", created_by=trainer)


def _promote(user, run, **extra):
    return key_client(user).post("/api/models/reasoner/versions/promote", {"run_id": str(run.pk), **extra},
                                 format="json")


def _blob_files():
    return sorted(p for p in storage.blobs_root().rglob("*") if p.is_file())


@pytest.mark.django_db
def test_promoting_the_same_run_twice_returns_the_same_version_without_a_second_copy(trainer, reasoner,
                                                                                    completed_run):
    first = _promote(trainer, completed_run)
    assert first.status_code == 201, first.content
    blobs = _blob_files()
    again = _promote(trainer, completed_run)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json()["label"] == "v1"
    assert _blob_files() == blobs
    files = {f["path"]: f["sha256"] for f in first.json()["files"]}
    assert "run_config.json" in files and any(path.startswith("checkpoints/30/") for path in files)
    assert not any(path.startswith("checkpoints/15/") for path in files)  # only the promoted checkpoint


@pytest.mark.django_db
def test_another_run_gets_the_next_label_and_a_duplicate_label_is_409(trainer, reasoner, completed_run,
                                                                      another_run, trained_out, settings):
    assert _promote(trainer, completed_run).json()["label"] == "v1"
    assert _promote(trainer, another_run).json()["label"] == "v2"
    third = copy_of_run(completed_run, trained_out, settings.RUNS_DIR)
    response = _promote(trainer, third, label="v1")
    assert response.status_code == 409 and response.json()["error"] == "label_exists"
    assert ModelVersion.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "field"), [
    ({"status": "failed"}, "run_id"),
    ({"status": "running"}, "run_id"),
])
def test_a_run_that_did_not_complete_cannot_be_promoted(trainer, reasoner, completed_run, change, field):
    TrainingRun.objects.filter(pk=completed_run.pk).update(**change)
    response = _promote(trainer, completed_run)
    assert response.status_code == 400 and field in response.json()["detail"]
    assert not ModelVersion.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "status"), [({"run_id": "00000000-0000-4000-8000-000000000000"}, 404),
                                              ({"run_id": "nope"}, 400), ({}, 400),
                                              ({"run_id": None, "label": "../x"}, 400)])
def test_unknown_runs_are_404_and_bad_ids_and_labels_400(trainer, reasoner, body, status):
    response = key_client(trainer).post("/api/models/reasoner/versions/promote", body, format="json")
    assert response.status_code == status
    assert not ModelVersion.objects.exists()


@pytest.mark.django_db
def test_a_downloaded_archive_unpacks_into_a_folder_generate_can_load(trainer, reasoner, completed_run, tmp_path):
    version_id = _promote(trainer, completed_run).json()["id"]
    response = key_client(trainer).get(f"/api/models/versions/{version_id}/download")
    assert response.status_code == 200 and response["Content-Type"] == "application/x-tar"
    archive = b"".join(response.streaming_content)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tmp_path, filter="data")
    folder = tmp_path / "reasoner-v1"
    manifest = json.loads((folder / storage.ARCHIVE_MANIFEST).read_text())
    from training.run_files import file_sha256

    assert all(file_sha256(folder / f["path"]) == f["sha256"] for f in manifest["files"])
    result = subprocess.run([sys.executable, "-m", "training", "generate", "--out", str(folder), "--prompt",
                             "What is 12 + 4?", "--max-new-tokens", "24"], cwd=settings.BASE_DIR,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[-1])["prompt"] == "What is 12 + 4?"


@pytest.mark.django_db
def test_a_sweeps_best_trial_is_promoted_in_one_click(trainer, reasoner, completed_run):
    from apps.sweeps.models import SweepJob, SweepTrial

    sweep = SweepJob.objects.create(dataset_version=completed_run.dataset_version, base_config={}, search_space={},
                                    n_trials=1, status="completed")
    trial = SweepTrial.objects.create(sweep=sweep, number=0, params={"learning_rate": 0.01}, run=completed_run,
                                      state="complete", value=0.5)
    SweepJob.objects.filter(pk=sweep.pk).update(best_trial=trial)
    response = key_client(trainer).post(f"/api/tuning/jobs/{sweep.pk}/promote", {"model": "reasoner"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["source_run_id"] == str(completed_run.pk) and response.json()["label"] == "v1"
