"""Serving benchmark (issue: serving), both sides measured in the same run.

A model is trained briefly on dev-reasoning-v1 (as bench_evaluations does, so answers have realistic
lengths) and promoted. gunicorn then serves `/v1/chat/completions` the way README's `make models` does
(one process, threads, one model host), and 8 clients ask at once, each a different eval-v1 question,
greedily: per-request latency (p50, p99) and the tokens per second served, against the KV-cache
generator's own tokens per second on the same 8 prompts in one batch (a fresh process, warmed up).
Each answer says the batch it was decoded in, so the rounds show how the 8 were batched.
QUICK=1 shrinks it for `make test`.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench._django import throwaway_database
from bench.bench_api import free_port, start_gunicorn
from bench.report import QUICK, compare, figure, quick

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "var" / "bench" / "serving"
CLIENTS = 8
MAX_TOKENS = quick(256, 48)
ROUNDS = quick(5, 1)
ISSUE = "#24 serving"


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


# As `make models`: one process, so one model host and one loaded copy.
MODEL_SERVER = ("--workers", "1", "--worker-class", "gthread", "--threads", "16", "--timeout", "300")


def _ask(port: int, token: str, prompt: str) -> dict:
    body = json.dumps({"model": "bench:v1", "messages": [{"role": "user", "content": prompt}],
                       "max_tokens": MAX_TOKENS, "temperature": 0})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    started = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body=body,
                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    response = conn.getresponse()
    reply = json.loads(response.read())
    if response.status != 200:
        raise RuntimeError(f"/v1/chat/completions answered {response.status}: {reply}")
    return {"latency_s": time.perf_counter() - started, "tokens": reply["usage"]["completion_tokens"],
            "batch_size": reply["timing"]["batch_size"]}


def _round(port: int, token: str, prompts: list[str]) -> dict:
    results: list[dict] = [{}] * len(prompts)

    def client(index: int) -> None:
        results[index] = _ask(port, token, prompts[index])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(prompts))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if not all(results):
        raise RuntimeError("a client got no answer")
    return {"wall_s": wall, "latencies": [r["latency_s"] for r in results],
            "tokens_per_s": sum(r["tokens"] for r in results) / wall,
            "batch_sizes": sorted(r["batch_size"] for r in results)}


def generator_tokens_per_s(folder: str, prompts: list[str]) -> float:
    """The KV-cache generator alone, one batch of all prompts, after a warm-up (run in a fresh process)."""
    from training.generate import generate_batch, load_model
    from training.render import render_prompt

    loaded = load_model(folder)
    rendered = [render_prompt(p) for p in prompts]
    generate_batch(loaded, rendered, MAX_TOKENS)  # compiles
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        out = generate_batch(loaded, rendered, MAX_TOKENS)
        samples.append(sum(len(g.token_ids) for g in out) / (time.perf_counter() - started))
    return statistics.median(samples)


def _generator_in_child(folder: Path, prompts: list[str]) -> float:
    result = subprocess.run([sys.executable, "-m", "bench.bench_serving", "--generator", str(folder),
                             json.dumps(prompts)], cwd=ROOT, capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def _setup():
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from apps.core.services import api_key_create
    from apps.evaluations.models import EvalSet
    from apps.registry.models import RegisteredModel
    from apps.registry.services import model_version_promote
    from bench.bench_evaluations import DEV_COUNT, _train

    call_command("seed_datasets", dev_count=DEV_COUNT, stdout=open(os.devnull, "w"))  # noqa: SIM115
    user = User.objects.create_superuser("bench", "bench@example.com", "bench-password")
    run = _train(user)
    model = RegisteredModel.objects.create(name="bench", created_by=user)
    version, _ = model_version_promote(model=model, data={"run_id": str(run.pk)}, user=user)
    _, token = api_key_create(user=user, name="bench", scope="read")
    items = EvalSet.objects.get(pk="eval-v1").items.order_by("position")[:CLIENTS]
    return version, token, [item.prompt for item in items]


def main():
    DATA.mkdir(parents=True, exist_ok=True)
    os.environ.update({"TUNIXRT_DATA_DIR": str(DATA), "TUNIXRT_RUNS_DIR": str(DATA / "runs"),
                       "TUNIXRT_DATASETS_DIR": str(DATA / "datasets"), "TUNIXRT_SERVING_DIR": str(DATA / "serving"),
                       "CELERY_BROKER_URL": os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/4")})
    with throwaway_database("serving") as db_name:
        from apps.serving.storage import version_folder

        version, token, prompts = _setup()
        folder = version_folder(version)
        port = free_port()
        server = start_gunicorn(db_name, port, workers=MODEL_SERVER)
        try:
            for _ in range(2):  # loads the model and compiles each batch shape the clients will meet
                _round(port, token, prompts)
            _ask(port, token, prompts[0])  # and the shape of one request alone
            rounds = [_round(port, token, prompts) for _ in range(ROUNDS)]
            alone = [_ask(port, token, prompts[0])["latency_s"] for _ in range(ROUNDS)]
        finally:
            server.terminate()
            server.wait(timeout=60)
        generator = _generator_in_child(folder, prompts)
    latencies = [latency for r in rounds for latency in r["latencies"]]
    figures = [
        figure(ISSUE, f"{CLIENTS} parallel chat completions, p50 latency", _percentile(latencies, 0.5), "s",
               comparison=compare("one request alone", alone, "s")),
        figure(ISSUE, f"{CLIENTS} parallel chat completions, p99 latency", _percentile(latencies, 0.99), "s"),
        figure(ISSUE, f"tokens/s served to {CLIENTS} parallel clients", [r["tokens_per_s"] for r in rounds],
               "tokens/s", comparison=compare(f"the KV-cache generator, one batch of {CLIENTS}", generator,
                                              "tokens/s")),
    ]
    print(json.dumps({
        "benchmark": "serving", "quick": QUICK, "figures": figures,
        "settings": {"clients": CLIENTS, "max_tokens": MAX_TOKENS, "rounds": ROUNDS, "temperature": 0,
                     "server": "gunicorn gthread, 1 process x 16 threads"},
        "rounds": [{**r, "latencies": [round(x, 4) for x in r["latencies"]]} for r in rounds],
    }, indent=2))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--generator":
        print(generator_tokens_per_s(sys.argv[2], json.loads(sys.argv[3])))
    else:
        main()
