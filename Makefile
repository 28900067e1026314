# tunix-rt — every target does its own set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
REQS := requirements.txt requirements-dev.txt requirements-tunix.txt constraints.txt

# Dozens of tests start a fresh trainer or evaluator process on the same tiny model; XLA's persistent cache
# lets every process after the first skip compiling it (about 3 s each here; the results are the same bits).
JAX_CACHE_ENV := JAX_COMPILATION_CACHE_DIR=$(CURDIR)/var/test/jax-cache JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 \
	JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=0

# The production shape the tests run against: local PostgreSQL and Redis (broker db 15 and cache db 12,
# away from real queues; the tests empty the cache db before each test).
TEST_ENV := DATABASE_URL=postgres://postgres@127.0.0.1:5432/tunixrt \
	CELERY_BROKER_URL=redis://127.0.0.1:6379/15 \
	CACHE_URL=redis://127.0.0.1:6379/12 \
	SECRET_KEY=test-only-secret-key-not-for-production \
	TUNIXRT_DATA_DIR=$(CURDIR)/var/test \
	$(JAX_CACHE_ENV)
# Three pytest-xdist workers on two cores (each with its own test database, broker and cache Redis databases:
# conftest.py): many tests wait on a subprocess or a worker, so a third keeps the cores busy (13.0 → 11.1 min
# here); worksteal keeps all busy to the end, whatever order the slow tests come in.
TEST_WORKERS ?= 3

DEMO_ENV := TUNIXRT_DEMO=1

.PHONY: demo test bench bench-peers drills lint serve worker beat web models asgi services chromium clean

$(STAMP): $(REQS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -r requirements-tunix.txt -c constraints.txt
	touch $(STAMP)

services:
	scripts/ensure_services.sh

demo: $(STAMP)
	$(DEMO_ENV) $(PY) manage.py migrate --noinput
	$(DEMO_ENV) $(PY) manage.py demo

# The web app (uvicorn) and a worker with beat, on the embedded default (SQLite + a file-based queue).
serve: $(STAMP)
	$(DEMO_ENV) scripts/serve.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Browser tests drive Debian's chromium through Playwright (browser downloads are impossible here).
chromium:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium) || \
	  (echo "make test: Debian's chromium is needed for the browser tests (apt-get install chromium)" >&2; exit 1)

# DB_CONN_MAX_AGE=0: the live test server's request threads must not keep connections that would
# stop pytest from dropping the test database.
test: $(STAMP) services lint chromium
	$(TEST_ENV) DB_CONN_MAX_AGE=0 $(VENV)/bin/pytest -n $(TEST_WORKERS) --dist worksteal

# Fault drills (broker loss, database outage, racing workers): minutes, so nightly rather than in `make test`.
drills: $(STAMP) services
	$(TEST_ENV) DB_CONN_MAX_AGE=0 $(VENV)/bin/pytest -m drill

# wrk (Debian) drives the read-latency benchmark; installed here when missing.
bench: $(STAMP) services
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk) || echo "bench: wrk unavailable; latency will be skipped"
	$(TEST_ENV) $(PY) -m bench $(BENCH)

# The tools the benchmarks compare with (MLflow, Label Studio), installed in their own virtualenvs under the data
# folder and measured in the same run as tunix-rt; `make bench` then compares with what this measured.
bench-peers: $(STAMP) services
	$(TEST_ENV) $(PY) -m bench.peers

# Production shape (see README): run each in its own terminal or under a supervisor.
# Sync workers (one request per process at a time): on 2 cores they served both 1,000-trace batches
# from two clients in parallel and reads with the lowest tail; threads in one process share a GIL, so
# two batches landing on one gthread worker ran one after the other (bench/bench_api.py). Sync
# workers expect a buffering reverse proxy (nginx) in front against slow clients.
WEB_WORKERS ?= 3
web: $(STAMP)
	$(VENV)/bin/gunicorn tunixrt.wsgi:application --bind 0.0.0.0:8000 --workers $(WEB_WORKERS) --worker-class sync
# /v1/chat/completions: one process, so one model host holds each model once and batches concurrent callers;
# its threads only wait on the host (the GIL is free while it decodes). Route /v1/ here.
models: $(STAMP)
	$(VENV)/bin/gunicorn tunixrt.wsgi:application --bind 0.0.0.0:8002 --workers 1 --worker-class gthread --threads 16 --timeout 300
# The run log stream (GET /api/tunix/runs/{id}/logs) is served here: async, so idle followers hold
# no worker. Route that path to this server (proxy buffering off) and everything else to `make web`.
asgi: $(STAMP)
	$(VENV)/bin/uvicorn tunixrt.asgi:application --host 0.0.0.0 --port 8001 --workers 2
worker: $(STAMP)
	$(VENV)/bin/celery -A tunixrt worker -Q default,train,eval --concurrency 2 --loglevel INFO
beat: $(STAMP)
	$(VENV)/bin/celery -A tunixrt beat --loglevel INFO

clean:
	rm -rf var/test .pytest_cache
