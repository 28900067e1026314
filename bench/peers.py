"""`make bench-peers`: the tools the benchmarks compare tunix-rt with, installed here and measured in the same
run as tunix-rt, so the "compared with" column is a measurement, not a quote.

- MLflow (its own virtualenv, its SQL tracking store on the same PostgreSQL): writing a 20,000-step run's
  metrics with `log_batch` (4 metrics a step, batches of 1,000, MLflow's limit), reading one metric's
  20,000-point history, and the newest 50 of 1,000 runs with `search_runs`. tunix-rt, in the same run: the
  launcher's relay storing the same rows, `GET …/metrics` of that run, and `GET /api/tunix/runs?limit=50`.
- Label Studio (its own virtualenv, its server on the same PostgreSQL): importing 5,000 text tasks with one
  `POST /api/projects/{id}/import`. tunix-rt: `POST /api/datasets/ingest` of 5,000 traces as NDJSON.

Both virtualenvs live under `$TUNIXRT_DATA_DIR/bench-peers/` (created on the first run; later runs reuse them).
Nothing here is run by `make test`: the installs are hundreds of megabytes. The JSON goes to
var/bench/peers.json, and `make bench` uses it for its comparisons when it is there (labelled with its date).
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.report import QUICK, compare, figure, quick

ROOT = Path(__file__).resolve().parent.parent
PEERS_DIR = Path(os.environ.get("TUNIXRT_DATA_DIR", ROOT / "var")) / "bench-peers"
RESULTS = ROOT / "var" / "bench" / "peers.json"
MLFLOW = ("mlflow==3.17.2", "psycopg2-binary==2.9.13")
LABEL_STUDIO = ("label-studio==1.23.2", "psycopg2-binary==2.9.13")
METRIC_ROWS = quick(20_000, 500)
RUNS = quick(1_000, 60)
TASKS = quick(5_000, 200)
ISSUE = "#20 peers"


# --- the peers' virtualenvs ----------------------------------------------------------------------

def peer_python(name: str, packages: tuple[str, ...]) -> Path:
    """The python of the peer's own virtualenv, created and installed once (pinned versions)."""
    venv = PEERS_DIR / name
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if stamp.exists() and stamp.read_text() == "\n".join(packages):
        return python
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *packages], check=True)
    stamp.write_text("\n".join(packages))
    return python


def _database(name: str) -> str:
    """A fresh PostgreSQL database (dropped first) on the server DATABASE_URL names; returns its URL."""
    import psycopg

    server, _, _ = os.environ["DATABASE_URL"].rpartition("/")
    # The maintenance database: the one DATABASE_URL names need not exist (the tests and benches make their own).
    with psycopg.connect(f"{server}/postgres".replace("postgres://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


# --- MLflow ------------------------------------------------------------------------------------------

MLFLOW_PROBE = r'''
import json, statistics, sys, time
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

uri, rows, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
client = MlflowClient(tracking_uri=uri)
experiment = client.create_experiment(f"bench-{time.time_ns()}")
run_id = client.create_run(experiment).info.run_id
started, batch = time.perf_counter(), []
for step in range(1, rows + 1):
    ts = int(time.time() * 1000)
    batch += [Metric("loss", 1.0 / step, ts, step), Metric("lr", 1e-3, ts, step),
              Metric("grad_norm", 0.5, ts, step), Metric("tokens_per_s", 1e4, ts, step)]
    if len(batch) >= 1000:
        client.log_batch(run_id, metrics=batch)
        batch = []
if batch:
    client.log_batch(run_id, metrics=batch)
write_s = time.perf_counter() - started

def timed(fn, n):
    samples = []
    for _ in range(n + 1):
        began = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples[1:])

history_ms = timed(lambda: client.get_metric_history(run_id, "loss"), 5)
for _ in range(runs - 1):
    client.create_run(experiment)
search_ms = timed(lambda: client.search_runs([experiment], max_results=50,
                                             order_by=["attributes.start_time DESC"]), 20)
import mlflow
print(json.dumps({"version": mlflow.__version__, "rows": rows, "points": 4 * rows, "write_s": write_s,
                  "points_per_s": 4 * rows / write_s, "history_points": len(client.get_metric_history(run_id, "loss")),
                  "get_metric_history_ms": history_ms, "runs": runs, "search_runs_newest_50_ms": search_ms}))
'''


def mlflow_measure() -> dict:
    python = peer_python("mlflow", MLFLOW)
    uri = _database("tunixrt_bench_peers_mlflow").replace("postgres://", "postgresql+psycopg2://")
    proc = subprocess.run([str(python), "-c", MLFLOW_PROBE, uri, str(METRIC_ROWS), str(RUNS)],
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError("the MLflow probe failed:\n" + proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- Label Studio ------------------------------------------------------------------------------------

LABEL_CONFIG = ('<View><Text name="text" value="$text"/><Choices name="verdict" toName="text">'
                '<Choice value="approve"/><Choice value="reject"/></Choices></View>')


def label_studio_measure() -> dict:
    python = peer_python("label-studio", LABEL_STUDIO)
    url = _database("tunixrt_bench_peers_label_studio")
    user_host, _, name = url.removeprefix("postgres://").rpartition("/")
    user, _, host_port = user_host.rpartition("@")
    host, _, port = host_port.partition(":")
    token, web_port = secrets.token_hex(20), _free_port()
    data_dir = PEERS_DIR / "label-studio-data"
    shutil.rmtree(data_dir, ignore_errors=True)
    # Label Studio is a Django project too: it must not inherit this process's settings module or database.
    own = {key: value for key, value in os.environ.items()
           if key not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "CACHE_URL", "CELERY_BROKER_URL", "SECRET_KEY")}
    env = {**own, "DJANGO_DB": "default", "POSTGRE_NAME": name, "POSTGRE_USER": user.partition(":")[0],
           "POSTGRE_PASSWORD": user.partition(":")[2], "POSTGRE_HOST": host, "POSTGRE_PORT": port or "5432",
           "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true", "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true"}
    server = subprocess.Popen(
        [str(python.with_name("label-studio")), "start", "--no-browser", "--port", str(web_port), "--data-dir",
         str(data_dir), "--username", "bench@example.com", "--password", secrets.token_hex(12),
         "--user-token", token],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_http(web_port, "/health", timeout=600, process=server)
        headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        project = _request(web_port, "POST", "/api/projects", {"title": "bench", "label_config": LABEL_CONFIG},
                           headers)
        tasks = [{"text": f"Tom has {n} apples and buys 7 more. How many? {n} + 7 = {n + 7}."} for n in range(TASKS)]
        started = time.perf_counter()
        imported = _request(web_port, "POST", f"/api/projects/{project['id']}/import", tasks, headers)
        seconds = time.perf_counter() - started
        version = subprocess.run([str(python), "-c", "import label_studio; print(label_studio.__version__)"],
                                 capture_output=True, text=True).stdout.strip()
        return {"version": version, "tasks": TASKS, "imported": imported.get("task_count"), "seconds": seconds,
                "tasks_per_s": TASKS / seconds}
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()


def _request(port: int, method: str, path: str, body, headers: dict) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1800)
    conn.request(method, path, body=json.dumps(body), headers=headers)
    response = conn.getresponse()
    text = response.read()
    if response.status >= 300:
        raise RuntimeError(f"{method} {path}: {response.status} {text[:500]!r}")
    return json.loads(text)


def _wait_http(port: int, path: str, *, timeout: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the peer's server exited:\n" + process.stderr.read()[-3000:])
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError(f"the peer's server did not answer {path} within {timeout:.0f} s")


def _free_port() -> int:
    from bench.bench_api import free_port

    return free_port()


# --- tunix-rt, in the same run ---------------------------------------------------------------------

def tunixrt_measure() -> dict:
    """The same operations on tunix-rt: the relay's metric writes, the metrics read, the run list, ingest."""
    from bench import bench_runs
    from bench._django import throwaway_database
    from bench.bench_api import start_gunicorn

    with throwaway_database("peers") as db_name:
        from django.core.cache import cache

        cache.clear()
        user, token, dataset = bench_runs._setup()
        ingest = bench_runs.metrics_ingest(user, dataset)
        reads = bench_runs.http_reads(db_name, token, user, dataset, ingest["run_id"])
        port = bench_runs.free_port()
        server = start_gunicorn(db_name, port)
        try:
            body = "".join(json.dumps(_trace(n)) + "\n" for n in range(TASKS)).encode()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            started = time.perf_counter()
            conn.request("POST", "/api/datasets/ingest", body=body,
                         headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"})
            response = conn.getresponse()
            report = json.loads(response.read())
            seconds = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=30)
    if response.status >= 300:
        raise RuntimeError(f"ingest answered {response.status}: {report}")
    return {"metrics_ingest": ingest, **reads,
            "ingest": {"traces": TASKS, "created": report.get("created"), "seconds": seconds,
                       "traces_per_s": TASKS / seconds}}


def _trace(n: int) -> dict:
    return {"prompt": f"Tom has {n} apples and buys 7 more. How many?", "final_answer": str(n + 7),
            "steps": [{"i": 0, "type": "compute", "content": f"{n} + 7 = {n + 7}"}],
            "meta": {"source": "bench-peers", "category": "arithmetic"}}


# --- the report --------------------------------------------------------------------------------------

def figures(ours: dict, mlflow: dict, label_studio: dict) -> list[dict]:
    write, reads, runs = ours["metrics_ingest"], ours["metrics_read"], ours["runs_list"]
    return [
        figure(ISSUE, f"metric points written ({4 * METRIC_ROWS:,} in one run)", write["points_per_s"], "points/s",
               comparison=compare(f"MLflow {mlflow['version']} log_batch, same PostgreSQL", mlflow["points_per_s"],
                                  "points/s")),
        figure(ISSUE, f"one metric's history, {METRIC_ROWS:,} points (GET …/metrics: all four)",
               reads["full"]["median_ms"], "ms",
               comparison=compare(f"MLflow {mlflow['version']} get_metric_history", mlflow["get_metric_history_ms"],
                                  "ms")),
        figure(ISSUE, f"newest 50 of {runs['runs']:,} runs", runs["newest_50"]["median_ms"], "ms",
               comparison=compare(f"MLflow {mlflow['version']} search_runs ({mlflow['runs']:,} runs)",
                                  mlflow["search_runs_newest_50_ms"], "ms")),
        figure(ISSUE, f"import of {TASKS:,} items (POST /api/datasets/ingest, NDJSON)", ours["ingest"]["traces_per_s"],
               "items/s", comparison=compare(f"Label Studio {label_studio['version']} task import",
                                             label_studio["tasks_per_s"], "items/s")),
    ]


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tunixrt.settings")
    measured_at = datetime.now(UTC).isoformat(timespec="seconds")
    mlflow = mlflow_measure()
    label_studio = label_studio_measure()
    ours = tunixrt_measure()
    ours["metrics_ingest"].pop("run_id", None)
    document = {"benchmark": "peers", "quick": QUICK, "measured_at": measured_at, "figures": figures(
        ours, mlflow, label_studio), "mlflow": mlflow, "label_studio": label_studio, "tunixrt": ours}
    if not QUICK:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(document, indent=2, default=str) + "\n")
    from bench.__main__ import table

    print(table(document["figures"]))
    print(f"JSON: {RESULTS}" if not QUICK else "(quick mode: nothing written)")


def peer_comparison(what: str, key: str, field: str, quoted_value: float, unit: str) -> dict:
    """The comparison another bench reports: what `make bench-peers` last measured here, else the figure the
    issue quoted (marked as quoted)."""
    if RESULTS.exists():
        document = json.loads(RESULTS.read_text())
        peer = document.get(key) or {}
        if field in peer:
            return compare(f"{what} ({peer.get('version', '')}, measured {document['measured_at'][:10]} by make "
                           "bench-peers)", peer[field], unit)
    return compare(what, quoted_value, unit, quoted=True)


if __name__ == "__main__":
    main()
