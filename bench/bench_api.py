"""API benchmarks (issue: foundation).

- Batch capture: POST /api/traces/batch through gunicorn (HTTP, validation, insert into PostgreSQL)
  with 1,000-trace batches of ~1 KB traces, against a naive one-row-at-a-time ORM loop measured in
  the same run. Target: >= 5,000 traces/s and >= 10x the naive loop.
- Reads: GET /api/traces?limit=50 and GET /api/traces/{id} at 32 concurrent connections (wrk),
  with the shared read cache and without it, beside the floor of an empty JSON 404 from the same server;
  p99 <= 50 ms with no errors.

Throughput and latency are repeated (REPEATS) and reported as median and range.
"""

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench._django import database_url_for, throwaway_database
from bench.report import compare, figure, quick

ROOT = Path(__file__).resolve().parent.parent
BATCH = 1000
BATCHES = quick(20, 2)
NAIVE_ROWS = quick(2000, 100)
CONCURRENCY = 32
WRK_SECONDS = quick(15, 1)
WARMUP_SECONDS = quick(3, 1)
PACED_SECONDS = quick(10.0, 1.0)
REPEATS = quick(3, 1)


def make_trace(n: int) -> dict:
    """A ~1 KB trace, unique per n."""
    a, b = n % 97 + 3, n // 97 + 11
    prompt = (f"Item {n}: a warehouse ships {a} crates on Monday and {b} crates on Tuesday. Each crate holds "
              f"12 boxes. How many boxes were shipped in total over the two days? ") * 2
    steps = [
        {"i": 0, "type": "parse", "content": f"Monday: {a} crates; Tuesday: {b} crates; 12 boxes per crate."},
        {"i": 1, "type": "compute", "content": f"Crates in total: {a} + {b} = {a + b}."},
        {"i": 2, "type": "compute", "content": f"Boxes in total: {a + b} * 12 = {(a + b) * 12}."},
        {"i": 3, "type": "verify", "content": f"Check: {(a + b) * 12} / 12 = {a + b} and {a + b} - {b} = {a}."},
    ]
    return {"trace_version": "1.0", "prompt": prompt, "steps": steps, "final_answer": str((a + b) * 12),
            "meta": {"source": "bench", "category": "arithmetic", "tags": ["bench"], "seed": n}}


def naive_orm_rate(user) -> float:
    from apps.traces.models import Trace
    from training.trace_schema import clean_trace, trace_content_hash

    started = time.perf_counter()
    for n in range(10_000_000, 10_000_000 + NAIVE_ROWS):
        data = clean_trace(make_trace(n))
        Trace.objects.create(prompt=data["prompt"], final_answer=data["final_answer"], steps=data["steps"],
                             meta=data["meta"], source="bench", category="arithmetic", tags=["bench"],
                             content_hash=trace_content_hash(data), step_count=len(data["steps"]), created_by=user)
    return NAIVE_ROWS / (time.perf_counter() - started)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


WEB_WORKERS = ("--workers", "3", "--worker-class", "sync")  # as `make web`


def start_gunicorn(db_name: str, port: int, extra_env: dict | None = None,
                   workers: tuple[str, ...] = WEB_WORKERS) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url_for(db_name), "DEBUG": "0", **(extra_env or {})}
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "tunixrt.wsgi:application", "--bind",
         f"127.0.0.1:{port}", *workers, "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/health")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("gunicorn did not become healthy:\n" + process.stderr.read()[-3000:])


def post_batches(port: int, token: str, batches: list[bytes]) -> list[int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    statuses = []
    for body in batches:
        conn.request("POST", "/api/traces/batch", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        statuses.append(response.status)
    return statuses


def batch_rate(port: int, token: str, start: int, clients: int) -> dict:
    bodies = [json.dumps([make_trace(start + b * BATCH + i) for i in range(BATCH)]).encode()
              for b in range(BATCHES)]
    shares = [bodies[c::clients] for c in range(clients)]
    results: list[list[int]] = [[] for _ in range(clients)]
    threads = [threading.Thread(target=lambda c=c: results[c].extend(post_batches(port, token, shares[c])))
               for c in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    statuses = [s for r in results for s in r]
    return {"clients": clients, "traces": BATCH * BATCHES, "seconds": round(elapsed, 3),
            "traces_per_s": round(BATCH * BATCHES / elapsed, 1), "avg_body_bytes": len(bodies[0]) // BATCH,
            "non_201": sum(s != 201 for s in statuses)}


def wrk_latency(port: int, token: str, path: str) -> dict:
    wrk = shutil.which("wrk")
    if wrk is None:
        return {"error": "wrk not installed (make bench installs it with apt-get)"}
    def run(seconds: int) -> str:
        return subprocess.run(
            [wrk, "-t", "2", "-c", str(CONCURRENCY), "-d", f"{seconds}s", "--latency", "-H",
             f"Authorization: Bearer {token}", f"http://127.0.0.1:{port}{path}"],
            capture_output=True, text=True, check=True,
        ).stdout

    # Warm-up, discarded: the first requests of a fresh worker pay for lazy imports and connections.
    run(WARMUP_SECONDS)
    out = run(WRK_SECONDS)
    percentiles = {}
    for label, value, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        percentiles[f"p{label}_ms"] = round(float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 2)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {"path": path, "connections": CONCURRENCY, "seconds": WRK_SECONDS, **percentiles,
            "requests_per_s": float(rps.group(1)) if rps else None,
            "errors": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": socket_errors.group(1) if socket_errors else None}


def paced_latency(port: int, token: str, path: str, rate_per_s: float, seconds: float = PACED_SECONDS) -> dict:
    """Open-loop load: CONCURRENCY clients, each on its own keep-alive connection, together sending
    `rate_per_s` requests per second on a fixed schedule. Unlike wrk's closed loop, latency here is
    the service time under that load, not the length of a saturated queue."""
    interval = CONCURRENCY / rate_per_s
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client(offset: float):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        next_at = time.perf_counter() + offset
        end = time.perf_counter() + seconds
        while next_at < end:
            time.sleep(max(0.0, next_at - time.perf_counter()))
            started = time.perf_counter()
            conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            response.read()
            with lock:
                latencies.append((time.perf_counter() - started) * 1000)
                errors[0] += response.status != 200
            next_at += interval

    threads = [threading.Thread(target=client, args=(i * interval / CONCURRENCY,)) for i in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()

    def pct(q):
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2)

    return {"path": path, "clients": CONCURRENCY, "rate_per_s": rate_per_s, "requests": len(latencies),
            "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99), "errors": errors[0]}


def uncached_latency(db_name: str, token: str, some_id: str) -> dict:
    """The same wrk runs against a server with the read and API-key caches off: what every request
    would cost without them (and what a cache miss costs)."""
    port = free_port()
    server = start_gunicorn(db_name, port, {"READ_CACHE_SECONDS": "0", "API_KEY_CACHE_SECONDS": "0"})
    try:
        return {"list": wrk_latency(port, token, "/api/traces?limit=50"),
                "detail": wrk_latency(port, token, f"/api/traces/{some_id}")}
    finally:
        server.terminate()
        server.wait(timeout=30)


def main():
    with throwaway_database("api") as db_name:
        from django.contrib.auth.models import User
        from django.core.cache import cache

        from apps.core.services import api_key_create
        from apps.traces.models import Trace

        cache.clear()  # nothing cached by an earlier run (against another database) may answer this one
        user = User.objects.create_superuser("bench", "bench@example.com", "bench-password")
        _, token = api_key_create(user=user, name="bench", scope="write")
        naive = naive_orm_rate(user)
        port = free_port()
        server = start_gunicorn(db_name, port)
        try:
            per_round = BATCH * BATCHES
            sequential = [batch_rate(port, token, start=2 * r * per_round, clients=1) for r in range(REPEATS)]
            parallel = [batch_rate(port, token, start=(2 * r + 1) * per_round, clients=2) for r in range(REPEATS)]
            some_id = str(Trace.objects.values_list("id", flat=True).first())
            # The floor: Django's JSON 404 for an unknown /api/ path (no auth, no database, no cache),
            # so the read numbers can be told apart from what the server stack itself costs here.
            floor = [wrk_latency(port, token, "/api/no-such-endpoint") for _ in range(REPEATS)]
            list_latency = [wrk_latency(port, token, "/api/traces?limit=50") for _ in range(REPEATS)]
            detail_latency = [wrk_latency(port, token, f"/api/traces/{some_id}") for _ in range(REPEATS)]
            # Half of what the saturated run achieved, spread over the same 32 clients.
            paced = {
                "list": paced_latency(port, token, "/api/traces?limit=50",
                                      round((list_latency[0].get("requests_per_s") or 100) / 2, 1)),
                "detail": paced_latency(port, token, f"/api/traces/{some_id}",
                                        round((detail_latency[0].get("requests_per_s") or 100) / 2, 1)),
            }
        finally:
            server.terminate()
            server.wait(timeout=30)
        uncached = uncached_latency(db_name, token, some_id)
    best = [max(a["traces_per_s"], b["traces_per_s"]) for a, b in zip(sequential, parallel, strict=True)]
    reads = {"list": list_latency, "detail": detail_latency}
    figures = [
        figure("#2 foundation", "POST /api/traces/batch, 1,000-trace batches (best of 1 or 2 clients)", best,
               "traces/s", target=(">=", 5000), comparison=compare("naive one-row ORM loop", naive, "traces/s")),
        figure("#2 foundation", "batch capture vs the naive ORM loop", [b / naive for b in best], "x",
               target=(">=", 10)),
    ]
    if shutil.which("wrk"):
        for label, runs in reads.items():
            figures.append(figure(
                "#2 foundation", f"GET /api/traces{'?limit=50' if label == 'list' else '/{id}'} p99, 32 clients",
                [r["p99_ms"] for r in runs], "ms", target=("<=", 50),
                comparison=compare("empty JSON 404 floor p99", [f["p99_ms"] for f in floor], "ms")))
            figures.append(figure("#2 foundation", f"{label} read errors at 32 clients",
                                  float(sum(r["errors"] + bool(r["socket_errors"]) for r in runs)), "responses",
                                  target=("<=", 0)))
        figures.append(figure("#2 foundation", "detail p99 with the read and key caches off",
                              uncached["detail"].get("p99_ms"), "ms",
                              note="what a cache miss costs; no target"))
    else:
        figures.append(figure("#2 foundation", "GET /api/traces p99, 32 clients", None, "ms", target=("<=", 50),
                              note="not measured: wrk is not installed (make bench installs it)"))
    result = {
        "benchmark": "api",
        "figures": figures,
        "batch_insert": {"sequential": sequential, "two_clients": parallel,
                         "naive_orm_loop_traces_per_s": round(naive, 1)},
        "read_latency_paced_half_capacity": paced,
        "read_cache": {"cache_url_set": bool(os.environ.get("CACHE_URL")),
                       "note": "read_latency runs with the shared read cache; read_latency_cache_off without it"},
        "read_latency_cache_off": uncached,
        "server_floor_json_404": {"runs": floor, "note": "errors here are the expected 404s"},
        "read_latency": reads,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
