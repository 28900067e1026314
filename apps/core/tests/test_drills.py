"""Fault drills (`make drills`, nightly in CI; the SIGKILL drills for builds, runs, evaluations and sweeps
run in `make test`). Each asserts that nothing is lost, nothing is left running, nothing is stored twice,
and every job ends completed (after a retry) or failed with a reason:

- two workers race for the same run and the same build (the task delivered to both): exactly one does it;
- the broker stops while work is queued and starts again (a Redis of the drill's own, without
  persistence, so the queued message is gone): the reaper sends the task again and the job completes;
- PostgreSQL refuses connections during batch ingest (through a proxy of the drill's own in front of the
  test database, never the shared server): 503 in the error shape, no partial batch, and the same server
  process answers again once the database is back, without a restart.
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

import pytest
import redis
from django.conf import settings
from django.db import connection

from apps.core.jobs import jobs_reap_all
from apps.core.services import api_key_create
from apps.core.testing import celery_worker, wait_for
from apps.datasets.builds import dataset_build_queue
from apps.datasets.models import DatasetBuild, DatasetVersion
from apps.datasets.spec import parse_build_request
from apps.datasets.tasks import dataset_build_task
from apps.runs.models import RunMetric, TrainingRun
from apps.runs.tasks import training_run_task
from apps.runs.tests.conftest import dataset, short_trace, tiny_config  # noqa: F401 - fixtures
from apps.traces.models import Trace
from apps.traces.services import trace_batch_create
from apps.traces.testing import make_trace_body

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

    redis_server = shutil.which("redis-server")
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
