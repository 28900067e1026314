"""Every long-running entry point refuses the public demo key outside demo mode (not only manage.py's
system check): gunicorn, uvicorn, a Celery worker and beat exit non-zero with a message naming SECRET_KEY,
and start with a real key."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

BIN = Path(sys.executable).parent
COMMANDS = {
    "gunicorn": [str(BIN / "gunicorn"), "tunixrt.wsgi:application", "--bind", "127.0.0.1:0", "--workers", "1"],
    "uvicorn": [str(BIN / "uvicorn"), "tunixrt.asgi:application", "--host", "127.0.0.1", "--port", "0"],
    "celery worker": [str(BIN / "celery"), "-A", "tunixrt", "worker", "--pool", "solo", "-Q", "secret-key-test",
                      "--without-gossip", "--without-mingle"],
    "celery beat": [str(BIN / "celery"), "-A", "tunixrt", "beat"],
}


def _env(tmp_path, **extra) -> dict:
    env = {key: value for key, value in os.environ.items()
           if key not in ("SECRET_KEY", "TUNIXRT_DEMO", "DEBUG", "DATABASE_URL")}
    return {**env, "TUNIXRT_DATA_DIR": str(tmp_path), **extra}


@pytest.mark.parametrize("name", COMMANDS)
def test_it_exits_without_a_secret_key_naming_the_variable(name, tmp_path):
    command = COMMANDS[name] + (["--schedule", str(tmp_path / "beat-schedule")] if name == "celery beat" else [])
    result = subprocess.run(command, cwd=settings.BASE_DIR, env=_env(tmp_path), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stdout + result.stderr


READY = {"gunicorn": "Booting worker", "celery worker": "ready."}


@pytest.mark.parametrize("name", READY)
def test_it_starts_with_a_secret_key(name, tmp_path):
    command = COMMANDS[name] + (["--loglevel", "INFO"] if name == "celery worker" else [])
    process = subprocess.Popen(command, cwd=settings.BASE_DIR, env=_env(tmp_path, SECRET_KEY="s" * 50),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        for line in process.stderr:  # until it says it serves, or it exits (the stream ends)
            seen.append(line)
            if READY[name] in line:
                break
        assert READY[name] in "".join(seen), "".join(seen)[-3000:]
    finally:
        process.terminate()
        process.wait(timeout=30)
