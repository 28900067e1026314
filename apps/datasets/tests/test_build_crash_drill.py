"""Crash drill: a 100k-trace build through the API, its worker SIGKILLed mid-build, the reaper, a
fresh worker: exactly one complete version, byte-identical to an uninterrupted build.

Size is DRILL_BUILD_TRACES (default 100,000, as the acceptance asks); it runs in `make test`.
"""

import os

import pytest

from apps.core.jobs import jobs_reap_all
from apps.core.testing import celery_worker, key_client, wait_for
from apps.datasets import services, storage
from apps.datasets.models import DatasetBuild, DatasetItem, DatasetVersion
from apps.datasets.spec import parse_build_request
from apps.traces.models import Trace
from apps.traces.services import trace_batch_create
from apps.traces.testing import make_trace_body

TRACES = int(os.environ.get("DRILL_BUILD_TRACES", "100000"))
REQUEST = {"dataset_name": "drill", "dataset_version": "v1", "selection_strategy": "random", "seed": 3,
           "split": {"train": 0.8, "val": 0.1, "test": 0.1}}


def _store_approved(n: int) -> None:
    for start in range(0, n, 1000):
        trace_batch_create(items=[make_trace_body() for _ in range(min(1000, n - start))])
    Trace.objects.update(status="approved")


def _build_row():
    return DatasetBuild.objects.get(dataset_id="drill-v1")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_killed_build_is_retried_into_one_version_identical_to_an_uninterrupted_one(curator, settings,
                                                                                     datasets_dir):
    settings.DATASET_BUILD_SYNC_MAX_TRACES = 1000
    _store_approved(TRACES)
    client = key_client(curator)

    with celery_worker("default") as worker:
        response = client.post("/api/datasets/build", REQUEST, format="json")
        assert response.status_code == 202, response.content
        try:
            wait_for(lambda: 0 < _build_row().progress_done < 2 * TRACES, timeout=120, interval=0.2)
        except AssertionError:
            pytest.fail("the build never reported progress:\n" + worker.output())
        worker.kill()
    assert _build_row().status == "running"
    assert not DatasetVersion.objects.filter(pk="drill-v1").exists()

    wait_for(lambda: jobs_reap_all(stale_seconds=2)["dataset_build"]["requeued"] == 1, timeout=30)
    with celery_worker("default", purge=False) as worker:
        try:
            wait_for(lambda: _build_row().status == "completed", timeout=300, interval=0.5)
        except AssertionError:
            pytest.fail(f"the retry did not complete ({_build_row().status}):\n" + worker.output())

    build = _build_row()
    assert (build.attempt, build.dataset_version_id, build.error_code) == (2, "drill-v1", "")
    version = DatasetVersion.objects.get(pk="drill-v1")
    assert version.trace_count == TRACES == DatasetItem.objects.filter(dataset=version).count()
    assert not any((datasets_dir / storage.STAGING).iterdir())

    reference, _ = services.dataset_version_build(spec=parse_build_request({**REQUEST, "dataset_version": "v2"}))
    data = (storage.version_dir("drill-v1") / "data.jsonl").read_bytes()
    assert data == (storage.version_dir("drill-v2") / "data.jsonl").read_bytes()
    assert version.content_hash == reference.content_hash
    assert (version.train_count, version.val_count, version.test_count) == (
        reference.train_count, reference.val_count, reference.test_count)
