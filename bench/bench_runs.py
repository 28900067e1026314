"""Training-run benchmarks (issue: runs), each comparison measured in the same run.

- Submit → first step: from POST /api/tunix/run to the trainer's first step, minus the trainer's own
  JAX compile (and first step). Target: <= 5 s.
- Relay overhead: the same `tiny` config trained by the launcher (through a Celery worker, events
  relayed into PostgreSQL) and by `python -m training train` directly. Target: < 5 % more wall time.
- Metrics ingest: the launcher's relay storing 20,000 per-step rows (loss, lr, grad_norm, tokens/s:
  4 metric points each). Target: >= 27,000 points/s (10x MLflow 3.17's log_batch, 2,713 points/s).
- Metrics read: GET …/metrics of a 20,000-step run through gunicorn, whole and downsampled to 500.
  Target: <= 150 ms (MLflow get_metric_history of 20,000 points: 1.27 s median).
- Runs list: the newest 50 of 1,000 runs through gunicorn. Target: <= 30 ms median (MLflow
  search_runs newest 50: 76 ms).
- Log followers: 100 SSE followers on the ASGI server follow one training run to the end (every line
  received) against the same run without followers (target: < 5 % more wall time); and
  GET /api/traces p99 at 32 wrk clients with 100 idle followers connected, against none (target: p99
  <= 50 ms).

The MLflow figures are quoted from the issue (measured on this machine with PostgreSQL); MLflow is not
a dependency. QUICK=1 shrinks every size so `make test` can check that this benchmark still runs.
Wall-clock figures are repeated (REPEATS) and reported as median and range.
"""

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench._django import database_url_for, throwaway_database
from bench.bench_api import free_port, start_gunicorn, wrk_latency
from bench.peers import peer_comparison
from bench.report import QUICK, compare, figure, quick

ROOT = Path(__file__).resolve().parent.parent
METRIC_ROWS = quick(20_000, 2_000)
LIST_RUNS = quick(1_000, 100)
FOLLOWERS = quick(100, 5)
TRAIN_STEPS = quick(1_500, 60)
REPEATS = quick(3, 1)
ISSUE = "#10 runs"
TINY = {"backend": "builtin", "model": "tiny", "batch_size": 8, "learning_rate": 3e-3, "warmup_steps": 10,
        "max_seq_len": 128, "checkpoint_every": 500, "seed": 0}
# Each benchmark queues on its own Redis database (clear of the tests' 15-2N and 12-2N): `make test` runs the quick
# benchmarks two at a time, and one's worker must never take another's task, whose run is in another database.
BROKER_DBS = {"runs": 14, "evaluations": 5, "store": 3}
DATA = ROOT / "var" / "bench" / "runs"


def use_broker(benchmark: str) -> None:
    """Point this process (and, through `_env`, its workers) at `benchmark`'s broker; call before Django starts.
    BENCH_BROKER_URL, when set, is every benchmark's broker: run them one at a time then."""
    os.environ["CELERY_BROKER_URL"] = (os.environ.get("BENCH_BROKER_URL")
                                       or f"redis://127.0.0.1:6379/{BROKER_DBS[benchmark]}")


def _env(db_name: str) -> dict:
    return {**os.environ, "DATABASE_URL": database_url_for(db_name),
            "TUNIXRT_RUNS_DIR": str(DATA / "runs"), "TUNIXRT_DATASETS_DIR": str(DATA / "datasets"), "DEBUG": "0"}


def _setup():
    from django.contrib.auth.models import User

    from apps.core.services import api_key_create
    from apps.datasets.services import dataset_version_build
    from apps.datasets.spec import parse_build_request
    from apps.traces.models import Trace
    from apps.traces.services import trace_batch_create

    user = User.objects.create_superuser("bench", "bench@example.com", "bench-password")
    _, token = api_key_create(user=user, name="bench", scope="write")
    items = [{"prompt": f"What is {10 + i % 80} + {3 + i % 9}? (#{i})", "final_answer": str(13 + i % 80 + i % 9),
              "steps": [{"i": 0, "type": "compute", "content": f"{10 + i % 80} + {3 + i % 9} = {13 + i % 80 + i % 9}"}],
              "meta": {"source": "bench", "category": "arithmetic"}} for i in range(2000)]
    for start in range(0, len(items), 1000):
        trace_batch_create(items=items[start:start + 1000])
    Trace.objects.update(status="approved")
    spec = parse_build_request({"dataset_name": "bench-runs", "dataset_version": "v1"})
    dataset, _ = dataset_version_build(spec=spec)
    return user, token, dataset


def _submit(user, dataset, steps: int, enqueue: bool = True, config: dict | None = None):
    from apps.core.testing import tasks_not_sent
    from apps.runs.services import training_run_plan, training_run_submit

    config = {**TINY, **(config or {}), "max_steps": steps}
    plan, _ = training_run_plan(data={"dataset_id": dataset.pk, "config": config, "auto_evaluate": False}, user=user)
    if enqueue:
        return training_run_submit(plan=plan, user=user)
    with tasks_not_sent():  # stored only: the relay is measured in this process
        return training_run_submit(plan=plan, user=user)


def _wait(run, timeout: float = quick(900, 300)):
    from apps.runs.models import TrainingRun

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = TrainingRun.objects.get(pk=run.pk)
        if run.status in ("completed", "failed", "cancelled"):
            return run
        time.sleep(0.2)
    raise RuntimeError(f"run {run.pk} did not finish")


def _start_worker(db_name: str) -> subprocess.Popen:
    return subprocess.Popen([str(Path(sys.executable).with_name("celery")), "-A", "tunixrt", "worker", "-Q", "train",
                             "--pool", "solo", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
                            cwd=ROOT, env=_env(db_name), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _start_uvicorn(db_name: str, port: int) -> subprocess.Popen:
    process = subprocess.Popen([str(Path(sys.executable).with_name("uvicorn")), "tunixrt.asgi:application",
                                "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=_env(db_name),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("uvicorn did not start")


# --- in-process measurements ---------------------------------------------------------------------

def metrics_ingest(user, dataset) -> dict:
    """The launcher's own relay path (Relay.metric + flush in its FLUSH_ROWS batches)."""
    from apps.core.jobs import JobContext, job_claim
    from apps.runs.launcher import FLUSH_ROWS, Relay
    from apps.runs.models import TrainingRun

    run = _submit(user, dataset, METRIC_ROWS, enqueue=False)
    # Claimed, as a launcher's run is: every flush is fenced by the attempt (its beat thread is not started).
    context = JobContext(job_claim(TrainingRun, run.pk), run, beat_seconds=3600)
    relay = Relay(run, context)
    started = time.perf_counter()
    for step in range(1, METRIC_ROWS + 1):
        relay.metric({"step": step, "loss": 1.0 / step, "lr": 1e-3, "grad_norm": 0.5, "tokens_per_s": 1e4})
        if len(relay.metrics) >= FLUSH_ROWS:
            relay.flush()
    relay.flush()
    seconds = time.perf_counter() - started
    points = 4 * METRIC_ROWS
    return {"rows": METRIC_ROWS, "points": points, "seconds": round(seconds, 3),
            "rows_per_s": round(METRIC_ROWS / seconds), "points_per_s": round(points / seconds),
            "mlflow_log_batch_points_per_s": 2713, "target": ">= 27,000 points/s",
            "met": points / seconds >= 27_000, "run_id": str(run.pk)}


def _timed_gets(port: int, token: str, path: str, n: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times, size = [], 0
    for _ in range(n + 2):
        started = time.perf_counter()
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:300]!r}")
        times.append((time.perf_counter() - started) * 1000)
        size = len(body)
    times = sorted(times[2:])  # the first two warm the worker
    return {"median_ms": round(statistics.median(times), 2), "min_ms": round(times[0], 2),
            "max_ms": round(times[-1], 2), "requests": n, "bytes": size}


def http_reads(db_name: str, token: str, user, dataset, run_id: str) -> dict:
    from apps.runs.models import TrainingRun

    extra = LIST_RUNS - TrainingRun.objects.count()
    for _ in range(max(0, extra)):
        _submit(user, dataset, 10, enqueue=False)
    port = free_port()
    server = start_gunicorn(db_name, port)
    try:
        full = _timed_gets(port, token, f"/api/tunix/runs/{run_id}/metrics", 20)
        sampled = _timed_gets(port, token, f"/api/tunix/runs/{run_id}/metrics?max_points=500", 20)
        listing = _timed_gets(port, token, "/api/tunix/runs?limit=50", 50)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {
        "metrics_read": {"points": 4 * METRIC_ROWS, "full": full, "downsampled_500": sampled,
                         "mlflow_get_metric_history_20k_ms": 1270, "target": "<= 150 ms",
                         "met": full["median_ms"] <= 150},
        "runs_list": {"runs": TrainingRun.objects.count(), "newest_50": listing,
                      "mlflow_search_runs_newest_50_ms": 76, "target": "<= 30 ms median",
                      "met": listing["median_ms"] <= 30},
    }


# --- through a worker ----------------------------------------------------------------------------

def submit_to_first_step(client_post, dataset) -> dict:
    from apps.runs.models import TrainingRun

    posted = time.time()
    response = client_post({"dataset_id": dataset.pk, "config": {**TINY, "max_steps": 20}, "dry_run": False,
                            "auto_evaluate": False})
    run = _wait(TrainingRun.objects.get(pk=response.json()["id"]))
    first_step = run.first_step_at.timestamp() - posted
    compile_s = run.timings.get("compile_and_first_step_seconds") or 0.0
    overhead = first_step - compile_s
    return {"post_to_first_step_s": round(first_step, 2), "compile_and_first_step_s": round(compile_s, 2),
            "overhead_s": round(overhead, 2), "target": "<= 5 s plus JAX compile", "met": overhead <= 5}


def relay_overhead(user, dataset) -> dict:
    """Launcher (through the worker) against the CLI on the same exported data and config."""
    from apps.runs.storage import RunPaths

    launched = _wait(_submit(user, dataset, TRAIN_STEPS))
    launcher_s = (launched.finished_at - launched.started_at).total_seconds()
    paths = RunPaths.of(launched)
    out = DATA / "cli-baseline"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "training", "train", "--config", str(paths.config), "--data",
                    str(paths.train_data), "--out", str(out)], cwd=ROOT, check=True, capture_output=True)
    cli_s = time.perf_counter() - started
    extra = launcher_s / cli_s - 1
    return {"steps": TRAIN_STEPS, "launcher_wall_s": round(launcher_s, 2), "cli_wall_s": round(cli_s, 2),
            "extra_fraction": round(extra, 4), "target": "< 5 % extra", "met": extra < 0.05,
            "launcher_run": launched, "baseline_run_id": str(launched.pk)}


def _follow(port: int, token: str, run_id: str, counts: list, index: int):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("GET", f"/api/tunix/runs/{run_id}/logs", headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    logs = 0
    for raw in response:
        logs += raw.startswith(b"event: log")
    counts[index] = logs


def followed_run(port: int, token: str, user, dataset, baseline) -> dict:
    from apps.runs.models import RunLogLine

    run = _submit(user, dataset, TRAIN_STEPS)
    counts = [None] * FOLLOWERS
    threads = [threading.Thread(target=_follow, args=(port, token, str(run.pk), counts, i), daemon=True)
               for i in range(FOLLOWERS)]
    for thread in threads:
        thread.start()
    run = _wait(run)
    for thread in threads:
        thread.join(timeout=120)
    lines = RunLogLine.objects.filter(run=run).count()
    followed_s = (run.finished_at - run.started_at).total_seconds()
    baseline_s = (baseline.finished_at - baseline.started_at).total_seconds()
    extra = followed_s / baseline_s - 1
    return {"followers": FOLLOWERS, "log_lines": lines, "followers_with_every_line": sum(c == lines for c in counts),
            "run_wall_s_followed": round(followed_s, 2), "run_wall_s_alone": round(baseline_s, 2),
            "extra_fraction": round(extra, 4), "target": "< 5 % extra", "met": extra < 0.05}


def _idle_followers(port: int, token: str, run_id: str, n: int) -> list:
    sockets = []
    for _ in range(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        conn.request("GET", f"/api/tunix/runs/{run_id}/logs", headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        response.fp.readline()  # the stream is open
        sockets.append((conn, response))
    return sockets


def reads_with_idle_followers(db_name: str, asgi_port: int, token: str, user, dataset) -> dict:
    quiet = _submit(user, dataset, 10, enqueue=False)  # queued, never picked up: its followers idle
    port = free_port()
    server = start_gunicorn(db_name, port)
    try:
        alone = wrk_latency(port, token, "/api/traces?limit=50")
        followers = _idle_followers(asgi_port, token, str(quiet.pk), FOLLOWERS)
        with_followers = wrk_latency(port, token, "/api/traces?limit=50")
        for conn, _ in followers:
            conn.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"idle_followers": FOLLOWERS, "without_followers": alone, "with_followers": with_followers,
            "target": "p99 <= 50 ms with the followers connected",
            "met": with_followers.get("p99_ms", 1e9) <= 50 and not with_followers.get("errors")}


def _figures(first: list, ingest: list, reads: dict, relay: list, followed: list, idle: dict) -> list:
    metrics, listing = reads["metrics_read"], reads["runs_list"]
    return [
        figure(ISSUE, "POST /api/tunix/run to the first step, less JAX compile", [f["overhead_s"] for f in first],
               "s", target=("<=", 5),
               comparison=compare("compile and first step", [f["compile_and_first_step_s"] for f in first], "s")),
        figure(ISSUE, f"training through the launcher ({TRAIN_STEPS:,} steps), extra wall time",
               [100 * r["extra_fraction"] for r in relay], "%", target=("<", 5),
               comparison=compare("python -m training train", [r["cli_wall_s"] for r in relay], "s")),
        figure(ISSUE, "metric points stored by the relay", [i["points_per_s"] for i in ingest], "points/s",
               target=(">=", 27_000),
               comparison=peer_comparison("MLflow log_batch", "mlflow", "points_per_s", 2713, "points/s")),
        figure(ISSUE, f"GET …/metrics of a {4 * METRIC_ROWS:,}-point run (median of 20)",
               metrics["full"]["median_ms"], "ms", target=("<=", 150),
               comparison=peer_comparison("MLflow get_metric_history", "mlflow", "get_metric_history_ms", 1270, "ms")),
        figure(ISSUE, f"runs list, newest 50 of {listing['runs']:,} (median of 50)", listing["newest_50"]["median_ms"],
               "ms", target=("<=", 30),
               comparison=peer_comparison("MLflow search_runs", "mlflow", "search_runs_newest_50_ms", 76, "ms")),
        figure(ISSUE, f"{FOLLOWERS} SSE followers on a training run, extra wall time",
               [100 * f["extra_fraction"] for f in followed], "%", target=("<", 5),
               comparison=compare("the same run unfollowed", [f["run_wall_s_alone"] for f in followed], "s")),
        figure(ISSUE, f"SSE followers that received every log line (of {FOLLOWERS})",
               float(min(f["followers_with_every_line"] for f in followed)), "followers",
               target=(">=", FOLLOWERS)),
        figure(ISSUE, f"GET /api/traces p99 at 32 clients with {FOLLOWERS} idle followers",
               idle["with_followers"].get("p99_ms"), "ms", target=("<=", 50),
               comparison=compare("without followers", idle["without_followers"].get("p99_ms") or 0, "ms"),
               note=idle["with_followers"].get("error", "")),
    ]


def main():
    DATA.mkdir(parents=True, exist_ok=True)
    # This process queues the runs and reads their folders: the same broker and folders as its worker.
    use_broker("runs")
    os.environ.update({"TUNIXRT_RUNS_DIR": str(DATA / "runs"),
                       "TUNIXRT_DATASETS_DIR": str(DATA / "datasets")})
    with throwaway_database("runs") as db_name:
        from django.core.cache import cache
        from django.test import Client

        cache.clear()
        user, token, dataset = _setup()
        client = Client(headers={"Authorization": f"Bearer {token}"})

        def post(body):
            return client.post("/api/tunix/run", body, content_type="application/json")

        ingest = [metrics_ingest(user, dataset) for _ in range(REPEATS)]
        reads = http_reads(db_name, token, user, dataset, ingest[0]["run_id"])
        worker = _start_worker(db_name)
        asgi_port = free_port()
        asgi = _start_uvicorn(db_name, asgi_port)
        try:
            first = [submit_to_first_step(post, dataset) for _ in range(REPEATS)]
            relay, followed = [], []
            for _ in range(REPEATS):  # each followed run against the unfollowed run just before it
                relay.append(relay_overhead(user, dataset))
                followed.append(followed_run(asgi_port, token, user, dataset, relay[-1].pop("launcher_run")))
            idle = reads_with_idle_followers(db_name, asgi_port, token, user, dataset)
        finally:
            for process in (worker, asgi):
                process.terminate()
                process.wait(timeout=60)
    for entry in ingest:
        entry.pop("run_id")
    print(json.dumps({"benchmark": "runs", "quick": QUICK,
                      "figures": _figures(first, ingest, reads, relay, followed, idle),
                      "submit_to_first_step": first, "relay_overhead": relay, "metrics_ingest": ingest, **reads,
                      "log_followers_on_a_training_run": followed, "reads_with_idle_log_followers": idle},
                     indent=2, default=str))


if __name__ == "__main__":
    main()
