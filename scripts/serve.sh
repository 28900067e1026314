#!/usr/bin/env bash
# `make serve`: the embedded default with nothing else to install or start. One process serves the
# web app (uvicorn, ASGI, so the live run log streams without holding a thread), and one Celery worker
# with beat runs training, evaluations, builds and the reaper from the file-based queue. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
data_dir=${TUNIXRT_DATA_DIR:-var}
mkdir -p "$data_dir"
.venv/bin/python manage.py migrate --noinput
.venv/bin/celery -A tunixrt worker --beat --schedule "$data_dir/celerybeat-schedule" -Q default,train,eval \
  --concurrency 2 --loglevel INFO &
worker=$!
trap 'kill "$worker" 2>/dev/null || true; wait "$worker" 2>/dev/null || true' EXIT INT TERM
echo "tunix-rt: http://127.0.0.1:${PORT:-8000}/admin/ (worker pid $worker)"
.venv/bin/uvicorn tunixrt.asgi:application --host 127.0.0.1 --port "${PORT:-8000}" --log-level warning
