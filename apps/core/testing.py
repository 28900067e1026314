"""Test helpers shared across apps: a real Celery worker process bound to the test database."""

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

from tunixrt.celery import app as celery_app


@contextlib.contextmanager
def celery_worker(queues: str = "default", timeout: float = 60.0):
    """Run `celery worker` in a subprocess against the current test database and broker.

    The worker is a separate process, so the test must commit its data (transaction=True).
    """
    if settings.CELERY_TASK_ALWAYS_EAGER:
        raise RuntimeError("a real worker needs CELERY_BROKER_URL (make test sets it)")
    with celery_app.connection_for_write() as conn:
        for queue in queues.split(","):
            conn.default_channel.queue_purge(queue) if _queue_exists(conn, queue) else None
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
    }
    celery = Path(sys.executable).with_name("celery")
    process = subprocess.Popen(
        [str(celery), "-A", "tunixrt", "worker", "-Q", queues, "--pool", "solo", "--concurrency", "1",
         "--without-gossip", "--without-mingle", "--loglevel", "INFO", "-n", f"test-{os.getpid()}@%h"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        cwd=settings.BASE_DIR,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()


def _queue_exists(conn, queue: str) -> bool:
    try:
        conn.default_channel.queue_declare(queue=queue, passive=True)
        return True
    except Exception:  # noqa: BLE001 - absent queue is the normal first-run case
        return False


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.25):
    """Poll until predicate() is truthy; returns its value or raises AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
