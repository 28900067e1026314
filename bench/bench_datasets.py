"""Dataset benchmarks (issue: datasets), in a throwaway PostgreSQL database.

- Build: POST /api/datasets/build with `random`, limit 50,000, over 100,000 approved traces
  (selection in SQL, freeze, file + rows, publish). Target: <= 10 s.
- Export: GET /api/datasets/{id}/export.jsonl?format=tunix_sft of a 100,000-trace version, streamed
  through the full Django stack and consumed chunk by chunk. Target: >= 20,000 lines/s.
- Memory: peak Python heap (tracemalloc) and peak RSS growth while streaming a 10,000-line and a
  100,000-line export, in the same run. Target: < 100 MB more for the 100,000-line one. A naive
  export that materialises every line first is measured alongside for comparison.

Runs in-process through Django's test client, so "server memory" is this process's memory. Build
and export times are repeated (REPEATS) and reported as median and range; QUICK=1 shrinks every size.
"""

import gc
import json
import os
import resource
import shutil
import tempfile
import time
import tracemalloc
import uuid
from datetime import timedelta

from bench._django import throwaway_database
from bench.report import compare, figure, quick

TRACES = quick(100_000, 2_000)
RANDOM_LIMIT = TRACES // 2
SMALL_EXPORT = TRACES // 10
INSERT_BATCH = 10_000
REPEATS = quick(3, 1)
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def make_trace(n: int) -> dict:
    """A ~600-byte trace, like the dev-reasoning generator's, unique per n."""
    a, b = n % 97 + 3, n // 97 + 11
    prompt = f"Item {n}: a shop sells {a} pens on Monday and {b} pens on Tuesday. How many pens in total?"
    steps = [
        {"i": 0, "type": "compute", "content": f"Pens: {a} + {b} = {a + b}"},
        {"i": 1, "type": "verify", "content": f"Check: {a + b} - {b} = {a}"},
    ]
    meta = {"source": "bench", "category": ("arithmetic", "shopping", "logic")[n % 3], "tags": ["bench"],
            "seed": n, "generator": "bench", "difficulty": ("easy", "medium")[n % 2]}
    return {"trace_version": "1.0", "prompt": prompt, "steps": steps, "final_answer": str(a + b), "meta": meta}


def seed_approved_traces(count: int) -> None:
    """Insert `count` approved traces with COPY (set-up, not measured)."""
    from django.utils import timezone

    from apps.traces.bulk import insert_new_traces
    from training.trace_schema import trace_content_hash

    start = timezone.now() - timedelta(days=1)
    for first in range(0, count, INSERT_BATCH):
        rows = []
        for n in range(first, min(first + INSERT_BATCH, count)):
            body = make_trace(n)
            created = start + timedelta(milliseconds=n)
            rows.append({"id": uuid.uuid4(), "created_at": created, "updated_at": created, "trace_version": "1.0",
                         "prompt": body["prompt"], "final_answer": body["final_answer"], "steps": body["steps"],
                         "meta": body["meta"], "source": "bench", "category": body["meta"]["category"],
                         "tags": ["bench"], "content_hash": trace_content_hash(body), "status": "approved",
                         "step_count": len(body["steps"]), "created_by_id": None, "score_due_at": None})
        insert_new_traces(rows)


def api_client():
    from django.contrib.auth.models import Group, User
    from rest_framework.test import APIClient

    from apps.core.services import api_key_create

    user = User.objects.create_user("bench-curator")
    user.groups.add(Group.objects.get(name="curator"))
    _, token = api_key_create(user=user, name="bench", scope="write")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def analyze() -> None:
    """Refresh planner statistics, as autovacuum does on a live database after bulk loads."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def timed_build(client, body: dict) -> dict:
    started, cpu = time.perf_counter(), time.process_time()
    response = client.post("/api/datasets/build", body, format="json")
    elapsed = time.perf_counter() - started
    if response.status_code != 201:
        raise SystemExit(f"build failed: {response.status_code} {response.content[:500]!r}")
    return {"seconds": round(elapsed, 3), "python_cpu_seconds": round(time.process_time() - cpu, 3),
            "traces": response.json()["trace_count"]}


def current_rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE_SIZE


def stream_export(client, dataset_id: str, fmt: str = "tunix_sft") -> dict:
    """Consume an export chunk by chunk, as a client on a socket would; returns lines, bytes, RSS peak."""
    gc.collect()
    rss_before = current_rss_bytes()
    rss_peak = rss_before
    lines = size = 0
    started, cpu = time.perf_counter(), time.process_time()
    response = client.get(f"/api/datasets/{dataset_id}/export.jsonl?format={fmt}")
    if response.status_code != 200:
        raise SystemExit(f"export failed: {response.status_code} {response.content[:500]!r}")
    for chunk in response.streaming_content:
        lines += chunk.count(b"\n")
        size += len(chunk)
        rss_peak = max(rss_peak, current_rss_bytes())
    response.close()
    elapsed = time.perf_counter() - started
    return {"lines": lines, "bytes": size, "seconds": round(elapsed, 3),
            "python_cpu_seconds": round(time.process_time() - cpu, 3), "lines_per_s": round(lines / elapsed),
            "rss_growth_mb": round((rss_peak - rss_before) / 2**20, 1)}


def traced_peak_mb(work) -> float:
    """Peak Python heap allocated while `work()` runs, in MB."""
    gc.collect()
    tracemalloc.start()
    try:
        work()
        return round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
    finally:
        tracemalloc.stop()


def naive_export_peak_mb(dataset_id: str) -> float:
    """What an export holding every line in memory before sending would need (the comparison)."""
    from apps.datasets.content import export_line
    from apps.datasets.models import DatasetItem

    def materialise():
        lines = [export_line("tunix_sft", line) + "\n" for line in
                 DatasetItem.objects.filter(dataset_id=dataset_id).order_by("position").values_list("line", flat=True)]
        return "".join(lines).encode()

    return traced_peak_mb(materialise)


def main():
    with throwaway_database("datasets"):
        from django.conf import settings

        settings.DATASETS_DIR = tempfile.mkdtemp(prefix="bench-datasets-")
        # Every build inside the request (a large one would otherwise go to a worker): the time
        # measured is the build's own, with no queue wait in it.
        settings.DATASET_BUILD_SYNC_MAX_TRACES = TRACES
        started = time.perf_counter()
        seed_approved_traces(TRACES)
        analyze()
        setup_s = time.perf_counter() - started
        client = api_client()

        random_builds = [timed_build(client, {"dataset_name": "bench-random", "dataset_version": f"v{r}",
                                              "selection_strategy": "random", "seed": 7 + r, "limit": RANDOM_LIMIT,
                                              "split": {"train": 0.9, "val": 0.1}}) for r in range(REPEATS)]
        full_build = timed_build(client, {"dataset_name": "bench-full", "dataset_version": "v1", "limit": TRACES})
        small_build = timed_build(client, {"dataset_name": "bench-small", "dataset_version": "v1",
                                           "selection_strategy": "latest", "limit": SMALL_EXPORT})

        analyze()
        stream_export(client, "bench-small-v1")  # warm-up: imports, caches, first connection
        export_small = stream_export(client, "bench-small-v1")
        exports_full = [stream_export(client, "bench-full-v1") for _ in range(REPEATS)]
        heap_small = traced_peak_mb(lambda: stream_export(client, "bench-small-v1"))
        heap_full = traced_peak_mb(lambda: stream_export(client, "bench-full-v1"))
        naive_full = naive_export_peak_mb("bench-full-v1")
        shutil.rmtree(settings.DATASETS_DIR, ignore_errors=True)

    rss_growth = max(e["rss_growth_mb"] for e in exports_full) - export_small["rss_growth_mb"]
    figures = [
        figure("#3 datasets", f"build: random {RANDOM_LIMIT:,} of {TRACES:,} approved traces",
               [b["seconds"] for b in random_builds], "s", target=("<=", 10),
               comparison=compare(f"build of all {TRACES:,}", full_build["seconds"], "s")),
        figure("#3 datasets", f"tunix_sft export of {TRACES:,} lines", [e["lines_per_s"] for e in exports_full],
               "lines/s", target=(">=", 20_000),
               comparison=compare(f"export of {SMALL_EXPORT:,} lines", export_small["lines_per_s"], "lines/s")),
        figure("#3 datasets", f"export heap growth, {TRACES:,} vs {SMALL_EXPORT:,} lines", heap_full - heap_small,
               "MB", target=("<", 100),
               comparison=compare(f"an export materialised first ({TRACES:,} lines)", naive_full, "MB")),
        figure("#3 datasets", f"export RSS growth, {TRACES:,} vs {SMALL_EXPORT:,} lines", rss_growth, "MB",
               target=("<", 100)),
    ]
    result = {
        "benchmark": "datasets",
        "figures": figures,
        "setup": {"approved_traces": TRACES, "insert_seconds": round(setup_s, 1)},
        "builds_random": random_builds,
        "build_all": full_build,
        "build_latest_small": small_build,
        "exports_tunix_sft_full": exports_full,
        "export_tunix_sft_small": export_small,
        "export_memory": {"heap_peak_mb_small": heap_small, "heap_peak_mb_full": heap_full,
                          "naive_materialised_heap_peak_mb_full": naive_full},
        "process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        # The machine is shared: a load above the core count stretches every wall-clock number.
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
