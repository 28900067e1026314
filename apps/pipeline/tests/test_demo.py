"""`manage.py demo` on the embedded default (SQLite, the file-based queue, its own worker), shortened:
trained through the queue, evaluated through the queue, promoted, champion set; the second run reuses
all of it. The same command `make demo` runs with the `small` model and every eval-v1 item."""

import json
import os
import re
import subprocess
import sys

import pytest
from django.conf import settings

# What a client of the demo's server sees: the leaderboard through the API with the demo's own key.
LEADERBOARD_THROUGH_THE_API = """
import json, os
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tunixrt.settings")
django.setup()
from django.conf import settings
from rest_framework.test import APIClient
client = APIClient()
client.credentials(HTTP_AUTHORIZATION="Bearer " + (settings.DATA_DIR / "demo" / "api_key.txt").read_text().strip())
print(json.dumps(client.get("/api/tunix/evaluations?eval_set=eval-v1", HTTP_HOST="127.0.0.1").json()))
"""
PRINTED_ROW = re.compile(r"^\s*(\d+)\s+([0-9a-f]{8})\s+[0-9a-f]{8}\s+\S+\s+([\d.]+)%", re.MULTILINE)


def _demo_env(data_dir) -> dict:
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "SECRET_KEY")}
    env.update(TUNIXRT_DEMO="1", TUNIXRT_DATA_DIR=str(data_dir), TUNIXRT_DATASETS_DIR=str(data_dir / "datasets"))
    return env


def _demo(data_dir, *args):
    env = _demo_env(data_dir)
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
    _assert_the_printed_leaderboard_is_the_apis(first.stdout, tmp_path)
    again = _demo(tmp_path, "--model", "tiny", "--steps", "20", "--eval-items", "12")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "reusing completed run" in again.stdout and "reusing completed evaluation" in again.stdout
    assert "Celery worker" not in again.stdout and "champion is already reasoner v1" in again.stdout


def _assert_the_printed_leaderboard_is_the_apis(stdout: str, data_dir) -> None:
    printed = [(int(rank), prefix, float(percent)) for rank, prefix, percent in PRINTED_ROW.findall(stdout)]
    api = subprocess.run([sys.executable, "-c", LEADERBOARD_THROUGH_THE_API], cwd=settings.BASE_DIR,
                         env=_demo_env(data_dir), capture_output=True, text=True, timeout=120)
    assert api.returncode == 0, api.stderr[-3000:]
    rows = json.loads(api.stdout.strip().splitlines()[-1])["results"]
    assert printed and len(printed) == len(rows)
    for (rank, prefix, percent), row in zip(printed, rows, strict=True):
        assert (rank, prefix, percent) == (row["rank"], row["evaluation_id"][:8], round(100 * row["primary_score"], 1))


def test_the_demo_refuses_to_run_outside_demo_mode(tmp_path):
    """It would create the superuser admin / admin: only ever on a local demo."""
    env = {**_demo_env(tmp_path), "TUNIXRT_DEMO": "0", "SECRET_KEY": "a-real-secret-for-this-test"}
    result = subprocess.run([sys.executable, "manage.py", "demo", "--skip-train"], cwd=settings.BASE_DIR, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "TUNIXRT_DEMO=1" in result.stderr
    assert not (tmp_path / "demo" / "api_key.txt").exists()
