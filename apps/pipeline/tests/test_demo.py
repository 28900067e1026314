"""`manage.py demo` on the embedded default (SQLite, the file-based queue, its own worker), shortened:
trained through the queue, evaluated through the queue, promoted, champion set; the second run reuses
all of it. The same command `make demo` runs with the `small` model and every eval-v1 item."""

import os
import subprocess
import sys

import pytest
from django.conf import settings


def _demo(data_dir, *args):
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "SECRET_KEY")}
    env.update(TUNIXRT_DEMO="1", TUNIXRT_DATA_DIR=str(data_dir), TUNIXRT_DATASETS_DIR=str(data_dir / "datasets"))
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=settings.BASE_DIR, env=env, check=True)
    return subprocess.run([*manage, "demo", *args], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_the_demo_runs_the_pipeline_through_the_queue_and_reuses_it(tmp_path):
    first = _demo(tmp_path, "--model", "tiny", "--steps", "20", "--eval-items", "12")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    for expected in ("a Celery worker on the embedded queue", "completed 20 steps", "12 items in",
                     "promoted: reasoner v1", "champion → reasoner v1 (the first champion)", "← this run"):
        assert expected in first.stdout, expected
    again = _demo(tmp_path, "--model", "tiny", "--steps", "20", "--eval-items", "12")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "reusing completed run" in again.stdout and "reusing completed evaluation" in again.stdout
    assert "Celery worker" not in again.stdout and "champion is already reasoner v1" in again.stdout
