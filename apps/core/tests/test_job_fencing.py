"""The job mechanism's guarantees under failure: a worker that cannot renew its claim fences itself off
before the reaper could hand the job on; every write of an attempt is fenced by its attempt number; the
followed child never outlives its launcher's loop; output survives a database hiccup; and a job's end is
announced only when its final state was really written."""

import sys
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError
from django.utils import timezone

from apps.core.child import ChildProcess, Sink, follow
from apps.core.jobs import (
    JobContext,
    JobInterrupted,
    JobLost,
    job_claim,
    job_reap,
    job_run,
    kind_of,
)
from apps.core.testing import tasks_not_sent, wait_for
from apps.datasets.models import DatasetBuild
from apps.datasets.tests.factories import store_traces


def _build() -> DatasetBuild:
    return DatasetBuild.objects.create(dataset_id="fence-v1", request={"dataset_name": "fence",
                                                                        "dataset_version": "v1"})


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_worker_that_cannot_renew_its_claim_fences_itself_off_within_the_lease():
    build = _build()
    claim = job_claim(DatasetBuild, build.pk)
    with mock.patch("apps.core.jobs.context.job_beat", side_effect=OperationalError("server closed the connection")):
        with JobContext(claim, build, beat_seconds=0.1, lease_seconds=0.5) as context:
            wait_for(lambda: context.lost, timeout=10, interval=0.05)
            with pytest.raises(JobLost, match="fenced itself off"):
                context.check()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_beat_that_fails_briefly_keeps_the_claim():
    build = _build()
    claim = job_claim(DatasetBuild, build.pk)
    failures = iter([OperationalError("blip")])

    def flaky_beat(*args, **kwargs):
        for failure in failures:
            raise failure
        return True

    with mock.patch("apps.core.jobs.context.job_beat", side_effect=flaky_beat):
        with JobContext(claim, build, beat_seconds=0.1, lease_seconds=5) as context:
            time.sleep(0.5)
            assert not context.lost


@pytest.mark.django_db
def test_writes_of_a_reaped_attempt_are_refused():
    build = _build()
    claim = job_claim(DatasetBuild, build.pk)
    DatasetBuild.objects.filter(pk=build.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    with tasks_not_sent():
        job_reap(kind_of(DatasetBuild), stale_seconds=60)
    with pytest.raises(JobLost):
        claim.update(progress_done=5)
    with pytest.raises(JobLost), claim.fenced():
        pass


class FakeContext:
    """What `follow` needs of a job context, with the claim lost on request."""

    def __init__(self):
        self.lost, self.cancel_requested = False, False

    def on_fence(self, callback):
        pass

    def check(self):
        if self.lost:
            raise JobLost("lost")

    def retry_while_owned(self, write):
        while True:  # as JobContext does, without waiting a second between tries
            try:
                return write()
            except OperationalError:
                continue


def _sleeper(seconds: int = 120) -> ChildProcess:
    script = ("import json, time; print(json.dumps({'event': 'log', 'message': 'up'}), flush=True); "
              f"time.sleep({seconds})")
    return ChildProcess([sys.executable, "-c", script], cwd=".")


def test_the_child_is_killed_when_the_claim_is_lost():
    child, context = _sleeper(), FakeContext()

    class LoseOnFirstLine(Sink):
        def event(self, event):
            context.lost = True

    with pytest.raises(JobLost):
        follow(child, context, LoseOnFirstLine(), cancel_file=None, grace_seconds=1)
    assert child.process.poll() is not None  # gone, not running on unwatched


def test_the_child_is_killed_when_the_sink_crashes():
    child = _sleeper()

    class Crashing(Sink):
        def event(self, event):
            raise RuntimeError("a bug in the relay")

    with pytest.raises(RuntimeError):
        follow(child, FakeContext(), Crashing(), cancel_file=None, grace_seconds=1)
    assert child.process.poll() is not None


@pytest.mark.django_db  # after the error the follow loop drops this thread's broken connections
def test_output_is_kept_through_a_database_error_and_written_when_it_answers():
    lines = "".join(f"print('{{\"event\": \"log\", \"message\": \"{i}\"}}', flush=True); " for i in range(5))
    child = ChildProcess([sys.executable, "-c", lines + "import time; time.sleep(1.5)"], cwd=".")

    class Flaky(Sink):
        def __init__(self):
            self.pending, self.written, self.failures = [], [], 3

        def event(self, event):
            self.pending.append(event["message"])

        def due(self):
            return bool(self.pending)

        def flush(self):
            if self.failures:
                self.failures -= 1
                raise OperationalError("the database is restarting")
            self.written, self.pending = self.written + self.pending, []

    sink = Flaky()
    outcome = follow(child, FakeContext(), sink, cancel_file=None, grace_seconds=1)
    assert outcome.returncode == 0 and sink.written == ["0", "1", "2", "3", "4"] and sink.failures == 0


@pytest.mark.django_db
def test_an_attempt_that_lost_its_claim_announces_nothing():
    build = _build()

    def lose(row, context):
        raise JobLost("reaped")

    with mock.patch("apps.core.jobs.context.announce_finished") as announce:
        assert job_run(DatasetBuild, build.pk, lose) is None
    assert not announce.called
    assert DatasetBuild.objects.get(pk=build.pk).status == "running"  # left to the reaper


@pytest.mark.django_db
def test_a_finished_job_is_announced_once():
    store_traces(2)
    build = _build()
    with mock.patch("apps.core.jobs.context.announce_finished") as announce:
        job_run(DatasetBuild, build.pk, lambda row, context: {})
        job_run(DatasetBuild, build.pk, lambda row, context: {})  # a second delivery: nothing to claim
    assert announce.call_args_list == [mock.call(DatasetBuild, build.pk, "completed")]


@pytest.mark.django_db
def test_an_interrupted_attempt_goes_back_to_the_queue_and_is_sent_again():
    build = _build()

    def interrupted(row, context):
        raise JobInterrupted("its host is shutting down")

    with tasks_not_sent() as sent:
        assert job_run(DatasetBuild, build.pk, interrupted) == "queued"
    build.refresh_from_db()
    assert (build.status, build.attempt, build.error_code) == ("queued", 1, "interrupted")
    assert [call.args[0] for call in sent.call_args_list] == [(str(build.pk),)]


@pytest.mark.django_db
def test_an_interrupted_last_attempt_fails_with_the_reason():
    build = _build()
    DatasetBuild.objects.filter(pk=build.pk).update(max_attempts=1)

    def interrupted(row, context):
        raise JobInterrupted("its host is shutting down")

    assert job_run(DatasetBuild, build.pk, interrupted) == "failed"
    build.refresh_from_db()
    assert build.status == "failed" and "gave up after 1 of 1" in build.error


@pytest.mark.django_db
def test_error_messages_never_show_the_servers_folders(settings):
    build = _build()

    def crash(row, context):
        raise RuntimeError(f"No Gemma weights in {settings.MODELS_DIR}/gemma-2b/model.safetensors")

    assert job_run(DatasetBuild, build.pk, crash) == "failed"
    build.refresh_from_db()
    assert str(settings.MODELS_DIR) not in build.error and "<models>/gemma-2b" in build.error
