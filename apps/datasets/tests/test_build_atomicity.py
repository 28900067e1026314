"""A version's rows and files exist together or not at all, whatever fails in the middle of a build."""

import os

import pytest

from apps.core.errors import Conflict
from apps.datasets import services, storage
from apps.datasets.models import DatasetItem, DatasetVersion
from apps.datasets.spec import parse_build_request

from .factories import build_body, store_traces


def _spec(**extra):
    return parse_build_request(build_body(**extra))


def _nothing_left(datasets_dir, dataset_id="unit-v1"):
    staging = datasets_dir / storage.STAGING
    assert not DatasetVersion.objects.filter(pk=dataset_id).exists()
    assert not DatasetItem.objects.filter(dataset_id=dataset_id).exists()
    assert not storage.version_dir(dataset_id).exists()
    assert not staging.exists() or not any(staging.iterdir()), list(staging.iterdir())


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_committed_build_has_its_row_and_its_files(datasets_dir):
    store_traces(3)
    version, created = services.dataset_version_build(spec=_spec())
    assert created
    folder = storage.version_dir("unit-v1")
    assert (folder / "manifest.json").exists() and (folder / "data.jsonl").exists()
    assert storage.file_sha256(folder / "data.jsonl") == version.content_hash
    assert not any((datasets_dir / storage.STAGING).iterdir())


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_failure_while_inserting_items_leaves_no_row_and_no_files(datasets_dir, monkeypatch):
    store_traces(7)
    monkeypatch.setattr(services, "INSERT_BATCH", 3)
    calls = []
    real_insert = services._insert_batch

    def fail_on_the_second_batch(rows):
        calls.append(len(rows))
        if len(calls) == 2:
            raise RuntimeError("disk full in the middle of the build")
        real_insert(rows)

    monkeypatch.setattr(services, "_insert_batch", fail_on_the_second_batch)
    with pytest.raises(RuntimeError, match="disk full"):
        services.dataset_version_build(spec=_spec())
    assert calls == [3, 3]  # the first batch was inserted, then rolled back
    _nothing_left(datasets_dir)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_failure_to_publish_the_files_removes_the_committed_rows(datasets_dir, monkeypatch):
    store_traces(3)

    def refuse(staging, dataset_id):
        raise OSError("read-only file system")

    monkeypatch.setattr(storage, "publish", refuse)
    with pytest.raises(OSError, match="read-only"):
        services.dataset_version_build(spec=_spec())
    _nothing_left(datasets_dir)


@pytest.mark.django_db
def test_a_failure_while_writing_the_manifest_leaves_nothing(datasets_dir, monkeypatch):
    store_traces(2)

    def broken_write(path, value):
        raise OSError("no space left on device")

    monkeypatch.setattr(storage, "write_json", broken_write)
    with pytest.raises(OSError):
        services.dataset_version_build(spec=_spec())
    _nothing_left(datasets_dir)


@pytest.mark.django_db
def test_a_conflict_leaves_the_existing_version_and_no_staging(datasets_dir, django_capture_on_commit_callbacks):
    store_traces(2)
    with django_capture_on_commit_callbacks(execute=True):
        services.dataset_version_build(spec=_spec())
    before = (storage.version_dir("unit-v1") / "data.jsonl").read_bytes()
    store_traces(1)
    with pytest.raises(Conflict):
        services.dataset_version_build(spec=_spec())
    assert (storage.version_dir("unit-v1") / "data.jsonl").read_bytes() == before
    assert not any((datasets_dir / storage.STAGING).iterdir())


@pytest.mark.django_db
def test_an_orphaned_folder_without_a_row_is_replaced(datasets_dir, django_capture_on_commit_callbacks):
    store_traces(2)
    orphan = storage.version_dir("unit-v1")
    orphan.mkdir(parents=True)
    (orphan / "data.jsonl").write_text("stale\n")
    with django_capture_on_commit_callbacks(execute=True):
        version, _ = services.dataset_version_build(spec=_spec())
    assert storage.file_sha256(orphan / "data.jsonl") == version.content_hash


@pytest.mark.django_db
def test_deleting_a_version_removes_its_folder(datasets_dir, django_capture_on_commit_callbacks):
    store_traces(2)
    with django_capture_on_commit_callbacks(execute=True):
        version, _ = services.dataset_version_build(spec=_spec())
    with django_capture_on_commit_callbacks(execute=True):
        services.dataset_version_delete(version=version)
    _nothing_left(datasets_dir)


def test_stale_staging_folders_are_swept(datasets_dir):
    old = storage.new_staging_dir("unit-v1")
    fresh = storage.new_staging_dir("unit-v2")
    future = old.stat().st_mtime + storage.STALE_STAGING_AGE_S + 1
    os.utime(fresh, (future, future))
    assert storage.sweep_stale_staging(now=future) == 1
    assert not old.exists() and fresh.exists()
