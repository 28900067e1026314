"""Large builds run as background jobs on the one job mechanism (apps.core.jobs)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.core.jobs import JobKind, job_claim, job_reap
from apps.datasets import storage
from apps.datasets.builds import dataset_build_queue, dataset_build_run, enqueue_dataset_build
from apps.datasets.models import DatasetBuild, DatasetVersion
from apps.datasets.spec import parse_build_request

from .factories import build_body, store_traces

BUILD_KIND = JobKind(name="dataset_build", model=DatasetBuild, enqueue=enqueue_dataset_build)


@pytest.fixture
def small_sync_limit(settings):
    settings.DATASET_BUILD_SYNC_MAX_TRACES = 2


def _queue(curator, **extra):
    return dataset_build_queue(spec=parse_build_request(build_body(**extra)), user=curator)


@pytest.mark.django_db
def test_a_build_above_the_limit_answers_202_with_a_status_url(builder, small_sync_limit,
                                                               django_capture_on_commit_callbacks):
    store_traces(3)
    with django_capture_on_commit_callbacks(execute=True):
        response = builder.post("/api/datasets/build", build_body(), format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert response["Location"] == body["status_url"] == f"/api/datasets/builds/{body['id']}"
    status = builder.get(body["status_url"]).json()
    assert status["status"] == "completed" and status["attempt"] == 1
    assert status["progress"] == {"done": 6, "total": 6}  # freeze 3, store 3
    assert status["dataset_url"] == "/api/datasets/unit-v1" and status["created_version"] is True
    assert DatasetVersion.objects.get(pk="unit-v1").trace_count == 3


@pytest.mark.django_db
def test_a_small_build_stays_synchronous(builder):
    store_traces(2)
    assert builder.post("/api/datasets/build", build_body(), format="json").status_code == 201
    assert not DatasetBuild.objects.exists()


@pytest.mark.django_db
def test_rebuilding_a_stored_id_answers_at_once_without_a_job(builder, small_sync_limit,
                                                              django_capture_on_commit_callbacks):
    store_traces(3)
    with django_capture_on_commit_callbacks(execute=True):
        builder.post("/api/datasets/build", build_body(), format="json")
    with CaptureQueriesContext(connection) as queries:
        again = builder.post("/api/datasets/build", build_body(), format="json")
    assert again.status_code == 200 and again.json()["created"] is False
    assert DatasetBuild.objects.count() == 1
    # The stored manifest can be megabytes; answering a rebuild needs its items, not the manifest.
    assert not [q["sql"] for q in queries if '"datasets_datasetversion"."manifest"' in q["sql"]]


@pytest.mark.django_db
def test_the_same_request_joins_the_active_build_and_another_is_a_conflict(curator):
    store_traces(3)
    first = _queue(curator)
    assert _queue(curator).pk == first.pk
    with pytest.raises(Exception) as raised:
        _queue(curator, split={"train": 0.5, "val": 0.5})
    assert getattr(raised.value, "code", None) == "build_in_progress"


@pytest.mark.django_db
def test_the_build_task_delivered_twice_builds_once(curator):
    store_traces(3)
    build = _queue(curator)
    assert dataset_build_run(build_id=build.pk) == "completed"
    assert dataset_build_run(build_id=build.pk) is None  # nothing left to claim
    build.refresh_from_db()
    assert (build.status, build.attempt, build.dataset_version_id) == ("completed", 1, "unit-v1")
    assert DatasetVersion.objects.count() == 1


@pytest.mark.django_db
def test_a_build_that_conflicts_fails_with_the_reason(curator, django_capture_on_commit_callbacks):
    store_traces(3)
    dataset_build_run(build_id=_queue(curator).pk)
    store_traces(1)
    build = _queue(curator)
    assert dataset_build_run(build_id=build.pk) == "failed"
    build.refresh_from_db()
    assert build.error_code == "dataset_exists" and "other traces" in build.error
    assert build.finished_at is not None


@pytest.mark.django_db
def test_a_build_another_user_requested_is_404_for_a_contributor(curator, owner):
    from apps.core.testing import key_client

    store_traces(3)
    build = _queue(curator)
    assert key_client(owner).get(f"/api/datasets/builds/{build.pk}").status_code == 404
    assert key_client(curator).get(f"/api/datasets/builds/{build.pk}").status_code == 200


def _stale_running(curator, *, attempt_of: int = 3):
    store_traces(3)
    build = _queue(curator)
    claim = job_claim(DatasetBuild, build.pk)
    DatasetBuild.objects.filter(pk=build.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5),
                                                    max_attempts=attempt_of)
    return build, claim


@pytest.mark.django_db
def test_the_reaper_requeues_a_lost_build_and_its_retry_completes(curator, django_capture_on_commit_callbacks):
    build, claim = _stale_running(curator)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        report = job_reap(BUILD_KIND, stale_seconds=60)
    assert report["lost"] == 1 and report["requeued"] == 1
    assert len(callbacks) == 1  # the task was sent again (and ran eagerly)
    build.refresh_from_db()
    assert (build.status, build.attempt) == ("completed", 2)
    assert DatasetVersion.objects.filter(pk="unit-v1").count() == 1


@pytest.mark.django_db
def test_the_reaper_fails_a_build_out_of_attempts(curator):
    build, _ = _stale_running(curator, attempt_of=1)
    assert job_reap(BUILD_KIND, stale_seconds=60)["failed"] == 1
    build.refresh_from_db()
    assert build.status == "failed" and build.error_code == "lost" and "gave up after 1 of 1" in build.error


@pytest.mark.django_db
def test_a_worker_that_lost_its_claim_cannot_finish(curator):
    from apps.core.jobs import job_finish

    build, stale_claim = _stale_running(curator)
    job_reap(BUILD_KIND, stale_seconds=60)
    assert not job_finish(stale_claim, "completed")
    assert DatasetBuild.objects.get(pk=build.pk).status == "queued"


@pytest.mark.django_db
def test_a_fresh_running_build_is_left_alone(curator):
    store_traces(3)
    build = _queue(curator)
    job_claim(DatasetBuild, build.pk)
    assert job_reap(BUILD_KIND, stale_seconds=60)["lost"] == 0
    assert DatasetBuild.objects.get(pk=build.pk).status == "running"


@pytest.mark.django_db
def test_a_long_queued_build_is_sent_again(curator, django_capture_on_commit_callbacks):
    store_traces(3)
    build = _queue(curator)
    DatasetBuild.objects.filter(pk=build.pk).update(queued_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert job_reap(BUILD_KIND, requeue_seconds=600)["reenqueued"] == 1
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_the_reap_command_prints_what_it_did(curator, capsys):
    from django.core.management import call_command

    _stale_running(curator, attempt_of=1)
    call_command("reap_jobs", "--stale-seconds", "60")
    assert '"failed": 1' in capsys.readouterr().out


@pytest.mark.django_db
def test_a_retry_removes_the_staging_folder_a_killed_attempt_left(curator, datasets_dir):
    store_traces(3)
    build = _queue(curator)
    leftover = storage.new_staging_dir("unit-v1", tag=f"job{build.pk.hex[:12]}")
    (leftover / "data.jsonl").write_text("half a line")
    dataset_build_run(build_id=build.pk)
    assert not leftover.exists()
    assert not any((datasets_dir / storage.STAGING).iterdir())
