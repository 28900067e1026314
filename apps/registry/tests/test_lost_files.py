"""A file lost behind the server's back (deleted or cut short in the store) is an error status decided
before the first byte of a download, never a 200 whose body stops early; a complete archive announces
its length, and two downloads of a version are the same bytes."""

import io
import tarfile

import pytest

from apps.core.store import artifact_store
from apps.core.testing import key_client
from apps.registry import storage
from apps.registry.models import ModelVersion, RegisteredModel
from apps.runs.storage import artifact_key


@pytest.fixture(params=["default store", "shared folder"])
def store_kind(request, settings, tmp_path):
    if request.param == "default store":
        settings.DATA_DIR = tmp_path / "data"  # this test's own blobs: it deletes some
    else:
        settings.ARTIFACT_STORE_URL = str(tmp_path / "shared")
    return request.param


@pytest.fixture
def version(trainer, store_kind, completed_run):  # the store first: the run's files are recorded into it
    RegisteredModel.objects.create(name="reasoner", created_by=trainer)
    response = key_client(trainer).post("/api/models/reasoner/versions/promote", {"run_id": str(completed_run.pk)},
                                        format="json")
    assert response.status_code == 201, response.content
    return ModelVersion.objects.get(pk=response.json()["id"])


def _blob(version, suffix: str) -> str:
    file = version.files.select_related("blob").get(path__endswith=suffix)
    return storage.blob_key(file.blob_id)


def _download(user, version):
    return key_client(user).get(f"/api/models/versions/{version.pk}/download")


def _refused_before_the_body(response, name: str):
    assert response.status_code == 503 and not response.streaming
    body = response.json()
    assert body["error"] == "artifact_missing" and name in body["detail"]


@pytest.mark.django_db
def test_an_archive_has_its_length_up_front_and_two_downloads_are_the_same_bytes(trainer, version):
    first, second = _download(trainer, version), _download(trainer, version)
    body = b"".join(first.streaming_content)
    assert first.status_code == 200 and int(first["Content-Length"]) == len(body)
    assert body == b"".join(second.streaming_content)
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert len(tar.getmembers()) == version.files.count() + 1  # + MODEL_MANIFEST.json


@pytest.mark.django_db
def test_a_deleted_blob_is_a_503_before_any_byte(trainer, version):
    store = artifact_store()
    store.delete(storage.NAMESPACE, [_blob(version, "run_config.json")])
    _refused_before_the_body(_download(trainer, version), "run_config.json")


@pytest.mark.django_db
def test_a_blob_cut_short_is_a_503_before_any_byte(trainer, version, tmp_path):
    store = artifact_store()
    key = _blob(version, "run_config.json")
    short = tmp_path / "short"
    short.write_bytes(b"{")
    store.delete(storage.NAMESPACE, [key])
    store.put(storage.NAMESPACE, key, short)
    _refused_before_the_body(_download(trainer, version), "run_config.json")


@pytest.mark.django_db
def test_a_run_artifact_lost_from_the_store_is_a_503_naming_it(trainer, store_kind, completed_run):
    from apps.runs.storage import RunPaths

    store = artifact_store()
    ok = key_client(trainer).get(f"/api/tunix/runs/{completed_run.pk}/artifacts/run_config.json/download")
    assert ok.status_code == 200 and int(ok["Content-Length"]) == len(b"".join(ok.streaming_content))
    store.delete("runs", [artifact_key(completed_run, "run_config.json")])
    if store_kind == "shared folder":  # the worker's scratch copy does not count: the web reads the store
        assert (RunPaths.of(completed_run).out / "run_config.json").exists()
    response = key_client(trainer).get(f"/api/tunix/runs/{completed_run.pk}/artifacts/run_config.json/download")
    _refused_before_the_body(response, "run_config.json")
