"""Fault drills (`make drills`, nightly in CI; the SIGKILL drills for builds, runs, evaluations and sweeps
run in `make test`). Each asserts that nothing is lost, nothing is left running, nothing is stored twice,
and every job ends completed (after a retry) or failed with a reason:

- two workers race for the same run and the same build (the task delivered to both): exactly one does it;
- the broker stops while work is queued and starts again (a Redis of the drill's own, without
  persistence, so the queued message is gone): the reaper sends the task again and the job completes;
- PostgreSQL refuses connections during batch ingest (through a proxy of the drill's own in front of the
  test database, never the shared server): 503 in the error shape, no partial batch, and the same server
  process answers again once the database is back, without a restart;
- the broker is down during writes: traces and a run answer 201/202 once (no 500, no duplicates), and
  once it is back the reaper sends what was never sent: the run trains once and every trace is scored;
- a worker is partitioned from the database for 30 s mid-training (the same proxy): it fences itself off
  and stops its trainer within its lease, the reaper retries the run, the retry resumes from the last
  checkpoint: one trainer at a time, every metric row present, final_loss set.
"""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.core.jobs import jobs_reap_all
from apps.core.services import api_key_create
from apps.core.testing import celery_worker, key_client, wait_for
from apps.datasets.builds import dataset_build_queue
from apps.datasets.models import DatasetBuild, DatasetVersion
from apps.datasets.spec import parse_build_request
from apps.datasets.tasks import dataset_build_task
from apps.runs.models import RunMetric, TrainingRun
from apps.runs.tasks import training_run_task
from apps.runs.testing import short_trace, tiny_config
from apps.traces.models import Trace, TraceScore
from apps.traces.services import trace_batch_create
from apps.traces.testing import make_trace_body
from training.run_files import read_metrics

pytestmark = [pytest.mark.drill, pytest.mark.worker, pytest.mark.django_db(transaction=True,
                                                                              serialized_rollback=True)]


@pytest.fixture(autouse=True)
def private_dirs(settings, tmp_path):
    settings.DATASETS_DIR = tmp_path / "datasets"
    settings.RUNS_DIR = tmp_path / "runs"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_workers_racing_for_one_run_and_one_build_do_each_once(trainer, dataset):  # noqa: F811
    from apps.runs.services import training_run_plan, training_run_submit

    plan, _ = training_run_plan(data={"dataset_id": dataset.pk, "config": tiny_config(max_steps=40),
                                      "auto_evaluate": False}, user=trainer)
    trace_batch_create(items=[short_trace(100 + i) for i in range(5)])
    Trace.objects.update(status="approved")
    with celery_worker("train,default") as first, celery_worker("train,default", purge=False) as second:
        run = training_run_submit(plan=plan, user=trainer)  # one message...
        training_run_task.delay(str(run.pk))  # ...and a duplicate delivery of it
        build = dataset_build_queue(spec=parse_build_request({"dataset_name": "race", "dataset_version": "v1"}))
        dataset_build_task.delay(str(build.pk))
        try:
            wait_for(lambda: TrainingRun.objects.get(pk=run.pk).status == "completed"
                     and DatasetBuild.objects.get(pk=build.pk).status == "completed", timeout=180, interval=0.5)
        except AssertionError:
            pytest.fail(first.output() + "\n----\n" + second.output())
    run.refresh_from_db()
    assert run.attempt == 1 and RunMetric.objects.filter(run=run).count() == 40
    assert DatasetBuild.objects.get(pk=build.pk).attempt == 1
    assert DatasetVersion.objects.filter(pk="race-v1").count() == 1


def test_a_broker_that_loses_its_queue_is_recovered_by_the_reaper(trainer, dataset):  # noqa: F811
    from apps.runs.services import training_run_plan, training_run_submit
    from tunixrt.celery import app as celery_app

    redis_server = _redis_server_binary()
    port = _free_port()
    broker_url = f"redis://127.0.0.1:{port}/0"

    def start_redis():
        return subprocess.Popen([redis_server, "--port", str(port), "--save", "", "--appendonly", "no",
                                 "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL)

    broker = start_redis()
    time.sleep(0.5)
    plan, _ = training_run_plan(data={"dataset_id": dataset.pk, "config": tiny_config(max_steps=20),
                                      "auto_evaluate": False}, user=trainer)
    try:
        with _sending_to(celery_app, broker_url):
            run = training_run_submit(plan=plan, user=trainer)  # queued on the drill's broker, no worker yet
            broker.terminate()
            broker.wait()  # the broker stops: without persistence the message is gone
            broker = start_redis()
            time.sleep(0.5)
            assert redis.Redis(port=port).llen("train") == 0  # the task is really gone
            assert TrainingRun.objects.get(pk=run.pk).status == "queued"
            with celery_worker("train", env={"CELERY_BROKER_URL": broker_url}, purge=False) as worker:
                report = jobs_reap_all(requeue_seconds=0)  # what beat does after JOB_REQUEUE_SECONDS
                assert report["training_run"]["reenqueued"] == 1
                try:
                    wait_for(lambda: TrainingRun.objects.get(pk=run.pk).status == "completed", timeout=120,
                             interval=0.5)
                except AssertionError:
                    pytest.fail(worker.output())
    finally:
        broker.terminate()
        broker.wait()
    run.refresh_from_db()
    assert run.attempt == 1 and RunMetric.objects.filter(run=run).count() == 20


@contextlib.contextmanager
def _sending_to(app, broker_url: str):
    """Point this process's task sending at another broker, and back afterwards. Celery reads the
    CELERY_BROKER_URL variable before its settings, so that is what changes."""
    saved = os.environ.get("CELERY_BROKER_URL"), app._pool, app.amqp._producer_pool
    os.environ["CELERY_BROKER_URL"], app._pool, app.amqp._producer_pool = broker_url, None, None
    try:
        yield
    finally:
        url, app._pool, app.amqp._producer_pool = saved
        if url is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = url


class _Proxy:
    """A TCP forwarder to PostgreSQL that can refuse connections and cut the open ones."""

    def __init__(self, target_port: int):
        self.target_port, self.port, self.refusing = target_port, _free_port(), False
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            if self.refusing:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.pairs.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:  # shutdown first: a plain close would not wake the thread reading the other way
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def down(self):
        self.refusing = True
        for pair in self.pairs:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.pairs.clear()

    def up(self):
        self.refusing = False

    def close(self):
        self.down()
        self.listener.close()


def test_database_refusing_connections_during_ingest_is_a_503_with_no_partial_batch(owner):
    db = connection.settings_dict
    proxy = _Proxy(int(db["PORT"] or 5432))
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": f"postgres://{db['USER'] or ''}@127.0.0.1:{proxy.port}/{db['NAME']}",
           "DB_CONN_MAX_AGE": "60", "DEBUG": "0"}
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    server = subprocess.Popen([gunicorn, "tunixrt.wsgi:application", "--bind", f"127.0.0.1:{port}",
                               "--workers", "1", "--log-level", "warning"],
                              cwd=settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, token = api_key_create(user=owner, name="drill", scope="write")

    def post(n: int):
        body = "".join(json.dumps(make_trace_body()) + "\n" for _ in range(n)).encode()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/datasets/ingest", data=body, method="POST",
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    try:
        wait_for(lambda: _answers(port), timeout=60)
        assert post(3)[0] == 201
        before = Trace.objects.count()
        proxy.down()
        status, body = post(500)
        assert status == 503 and body["error"] == "service_unavailable", body
        assert Trace.objects.count() == before  # nothing of the batch was stored
        proxy.up()
        status, body = post(500)  # the same server process, no restart
        assert status == 201 and body["created"] == 500
        assert Trace.objects.count() == before + 500
    finally:
        server.terminate()
        server.wait(timeout=30)
        proxy.close()  # cuts what is left, so no session outlives the drill


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2):
            return True
    except (urllib.error.URLError, OSError):
        return False


# --- outages during writes and training (issue: background work that survives outages) -----------------

def _redis_server_binary() -> str:
    """redis-server's path, or a failure that says what to install (never a TypeError on None later)."""
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        pytest.fail("the broker drills need redis-server on PATH (Debian's redis-server package)")
    return redis_server


def _start_redis(port: int) -> subprocess.Popen:
    server = subprocess.Popen([_redis_server_binary(), "--port", str(port), "--save", "", "--appendonly", "no",
                               "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL)
    wait_for(lambda: _redis_answers(port), timeout=10, interval=0.1)
    return server


def _redis_answers(port: int) -> bool:
    try:
        return redis.Redis(port=port, socket_timeout=0.5).ping()
    except redis.exceptions.ConnectionError:
        return False


def test_writes_while_the_broker_is_down_answer_201_202_once_and_all_work_is_done_afterwards(owner, trainer,
                                                                                             dataset):
    """Broker down during writes: the committed rows answer 201/202 (no 500 a retrying client would turn
    into duplicates); once the broker is back, the reaper sends what was never sent: the run trains once
    and every trace posted during the outage is scored."""
    from tunixrt.celery import app as celery_app

    port = _free_port()
    broker_url = f"redis://127.0.0.1:{port}/0"
    client, contributor = key_client(trainer), key_client(owner)
    broker = _start_redis(port)
    try:
        with _sending_to(celery_app, broker_url):
            broker.terminate()
            broker.wait()  # down
            started = time.monotonic()
            traces = [contributor.post("/api/traces", make_trace_body(), format="json") for _ in range(5)]
            batch = contributor.post("/api/traces/batch", {"traces": [make_trace_body() for _ in range(20)]},
                                     format="json")
            run = client.post("/api/tunix/run", {"dataset_id": dataset.pk, "dry_run": False, "auto_evaluate": False,
                                                 "config": tiny_config(max_steps=20)}, format="json")
            assert [r.status_code for r in traces] == [201] * 5 and batch.status_code == 201, batch.content
            assert run.status_code == 202, run.content
            print(f"7 writes with the broker down answered in {time.monotonic() - started:.1f} s")
            run_row = TrainingRun.objects.get(pk=run.json()["id"])
            assert (run_row.status, run_row.dispatched_at) == ("queued", None)
            broker = _start_redis(port)  # back, empty
            with celery_worker("train,default", env={"CELERY_BROKER_URL": broker_url}, purge=False) as worker:
                report = jobs_reap_all(dispatch_retry_seconds=0)  # the reaper's next pass
                assert report["training_run"]["reenqueued"] == 1
                posted = Trace.objects.filter(source="test")
                posted.update(score_due_at=timezone.now())  # due now rather than in JOB_DISPATCH_RETRY_SECONDS
                assert jobs_reap_all()["trace_scores"]["resent"] == 25
                try:
                    wait_for(lambda: TrainingRun.objects.get(pk=run_row.pk).status == "completed"
                             and TraceScore.objects.filter(trace__source="test").count() == 25, timeout=180,
                             interval=0.5)
                except AssertionError:
                    pytest.fail(worker.output())
    finally:
        broker.terminate()
        broker.wait()
    run_row.refresh_from_db()
    assert run_row.attempt == 1 and Trace.objects.filter(source="test").count() == 25  # no twins
    assert not posted.filter(score_due_at__isnull=False).exists()


def _trainers_of(run_id) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = (entry / "stat").read_text().split(") ")[1][0]
            except OSError:
                continue
            if "training train" in command and str(run_id) in command and state != "Z":
                found.append(int(entry.name))
    return found


class _TrainerCensus(threading.Thread):
    """Counts, every 0.2 s, the trainer processes working on one run: there must never be two."""

    def __init__(self, run_id):
        super().__init__(daemon=True)
        self.run_id, self.most, self.done = run_id, 0, threading.Event()

    def run(self):
        while not self.done.wait(0.2):
            self.most = max(self.most, len(_trainers_of(self.run_id)))


def test_a_worker_partitioned_from_the_database_mid_training_fences_itself_and_one_attempt_finishes(trainer,
                                                                                                     dataset):
    """The worker reaches PostgreSQL through a proxy of the drill's own (never the shared server is
    stopped); the drill cuts it for 30 s mid-run. Within its lease the worker stops its trainer and gives
    up; the reaper (in this process, which still reaches the database) retries the run; when the database
    is back, the retry resumes from the last checkpoint. One trainer at a time, every metric row of the run
    folder in the database, final_loss set."""
    db = connection.settings_dict
    proxy = _Proxy(int(db["PORT"] or 5432))
    worker_env = {"DATABASE_URL": f"postgres://{db['USER'] or ''}@127.0.0.1:{proxy.port}/{db['NAME']}",
                  "DB_CONNECT_TIMEOUT_S": "2"}
    client = key_client(trainer)
    census = None
    try:
        with celery_worker("train", env=worker_env) as worker:
            response = client.post("/api/tunix/run", {"dataset_id": dataset.pk, "dry_run": False,
                                                      "auto_evaluate": False,
                                                      "config": tiny_config(max_steps=400, checkpoint_every=50)},
                                   format="json")
            run = TrainingRun.objects.get(pk=response.json()["id"])
            census = _TrainerCensus(run.pk)
            census.start()
            try:
                wait_for(lambda: RunMetric.objects.filter(run=run).count() >= 80, timeout=120, interval=0.2)
            except AssertionError:
                pytest.fail(worker.output())
            proxy.down()
            outage_ends = time.monotonic() + 30
            first_trainers = _trainers_of(run.pk)
            wait_for(lambda: not _trainers_of(run.pk), timeout=20, interval=0.2)  # fenced: its trainer is gone
            assert first_trainers and RunMetric.objects.filter(run=run).count() < 400
            # The drill's worker beats every second and counts as lost after 10 s (apps.core.testing).
            wait_for(lambda: jobs_reap_all(kinds=["training_run"], stale_seconds=10)["training_run"]["requeued"] == 1,
                     timeout=30, interval=1)
            time.sleep(max(0.0, outage_ends - time.monotonic()))
            proxy.up()
            try:
                wait_for(lambda: TrainingRun.objects.get(pk=run.pk).status == "completed", timeout=240, interval=1)
            except AssertionError:
                pytest.fail(worker.output())
    finally:
        if census is not None:
            census.done.set()
        proxy.close()
    run.refresh_from_db()
    on_disk = {line["step"]: line["loss"] for line in
               read_metrics(Path(settings.RUNS_DIR) / str(run.pk) / "out" / "metrics.jsonl")}
    stored = dict(RunMetric.objects.filter(run=run).values_list("step", "loss"))
    assert census.most == 1
    assert (run.status, run.attempt, run.steps_completed) == ("completed", 2, 400)
    assert sorted(stored) == list(range(1, 401)) and stored == on_disk
    assert run.final_loss == on_disk[400]
