"""Evaluation benchmark (issue: evaluations), both sides measured in the same run.

A `small` model is trained briefly on dev-reasoning-v1 (its quality is not the point: it learns the
format and to stop, so generation lengths are realistic). Then all 250 items of eval-v1 are
evaluated twice from the same checkpoint: by `python -m training evaluate` directly, and through the
product (POST evaluate → the `eval` queue → a Celery worker → the launcher → predictions stored in
PostgreSQL → metrics). Target: <= 60 s for the 250 items, generation included, and the queue and the
database writes adding < 10 % to the CLI's wall time. Both sides run REPEATS times, alternating, and
are reported as median and range. QUICK=1 shrinks it for `make test`.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench._django import throwaway_database
from bench.bench_runs import DATA, ROOT, _env, use_broker
from bench.report import QUICK, compare, figure, quick

MODEL = quick("small", "tiny")
TRAIN_STEPS = quick(300, 20)
ITEMS = quick(None, 12)  # None: every item of eval-v1
REPEATS = quick(3, 1)
DEV_COUNT = quick(None, 200)  # traces per dev-reasoning version seeded (None: the full 2,000)
ISSUE = "#11 evaluations"


def _train(user):
    from apps.runs.launcher import training_run_launch
    from apps.runs.models import TrainingRun
    from apps.runs.services import training_run_plan, training_run_submit

    config = {"backend": "builtin", "model": MODEL, "max_steps": TRAIN_STEPS, "batch_size": 16,
              "learning_rate": 4e-3, "warmup_steps": min(40, TRAIN_STEPS // 5), "max_seq_len": 256,
              "checkpoint_every": TRAIN_STEPS, "seed": 0}
    plan, _ = training_run_plan(data={"dataset_id": "dev-reasoning-v1", "config": config, "auto_evaluate": False},
                                user=user)
    from apps.core.testing import tasks_not_sent

    with tasks_not_sent():  # trained right here, in this process
        run = training_run_submit(plan=plan, user=user)
    training_run_launch(run_id=run.pk)
    return TrainingRun.objects.get(pk=run.pk)


def _cli(run, items: list[dict]) -> dict:
    from apps.runs.storage import RunPaths

    path = DATA / "eval-items.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "training", "evaluate", "--out", str(RunPaths.of(run).out),
                             "--eval", str(path), "--batch-size", "16"], cwd=ROOT, capture_output=True, text=True,
                            check=True)
    wall = time.perf_counter() - started
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    predictions = [json.loads(line) for line in (RunPaths.of(run).out / "predictions.jsonl").open()]
    tokens = sum(p["tokens"] or 0 for p in predictions)
    return {"items": len(predictions), "wall_s": round(wall, 2), "items_per_s": round(len(predictions) / wall, 2),
            "generated_tokens_per_s": round(tokens / wall, 1), "answer_accuracy": summary["answer_accuracy"],
            "format_compliance": summary["format_compliance"]}


def _start_worker(db_name: str) -> subprocess.Popen:
    worker = subprocess.Popen([str(Path(sys.executable).with_name("celery")), "-A", "tunixrt", "worker", "-Q", "eval",
                               "--pool", "solo", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
                              cwd=ROOT, env=_env(db_name), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(5)  # the worker is up before any clock starts
    return worker


def _queued(run, user, limit) -> dict:
    from apps.evaluations.models import Evaluation, Prediction
    from apps.evaluations.services import evaluation_request

    request = {"eval_set": "eval-v1", "batch_size": 16}
    if limit:
        request["limit"] = limit
    started = time.perf_counter()
    evaluation = evaluation_request(run=run, data=request, user=user)
    while Evaluation.objects.get(pk=evaluation.pk).status not in ("completed", "failed", "cancelled"):
        time.sleep(0.1)
    wall = time.perf_counter() - started
    evaluation = Evaluation.objects.get(pk=evaluation.pk)
    tokens = sum(t or 0 for t in Prediction.objects.filter(evaluation=evaluation).values_list("output_tokens",
                                                                                            flat=True))
    return {"status": evaluation.status, "items": evaluation.item_count, "wall_s": round(wall, 2),
            "items_per_s": round(evaluation.item_count / wall, 2), "generated_tokens_per_s": round(tokens / wall, 1),
            "answer_accuracy": evaluation.primary_score,
            "format_compliance": evaluation.metrics.get("format_compliance")}


def main():
    DATA.mkdir(parents=True, exist_ok=True)
    use_broker("evaluations")
    os.environ.update({"TUNIXRT_RUNS_DIR": str(DATA / "runs"),
                       "TUNIXRT_DATASETS_DIR": str(DATA / "datasets")})
    with throwaway_database("evaluations") as db_name:
        from django.contrib.auth.models import User
        from django.core.management import call_command

        from apps.evaluations.models import EvalSet

        call_command("seed_datasets", dev_count=DEV_COUNT, stdout=open(os.devnull, "w"))  # noqa: SIM115
        user = User.objects.create_superuser("bench", "bench@example.com", "bench-password")
        trained = time.perf_counter()
        run = _train(user)
        train_s = time.perf_counter() - trained
        items = [item.as_item() for item in EvalSet.objects.get(pk="eval-v1").items.order_by("position")]
        items = items[:ITEMS] if ITEMS else items
        worker = _start_worker(db_name)
        cli, queued = [], []
        try:
            for _ in range(REPEATS):
                cli.append(_cli(run, items))
                queued.append(_queued(run, user, ITEMS))
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    figures = [
        figure(ISSUE, f"evaluate {queued[0]['items']} eval-v1 items through the queue ({MODEL})",
               [q["wall_s"] for q in queued], "s", target=("<=", 60),
               comparison=compare("python -m training evaluate", [c["wall_s"] for c in cli], "s")),
        figure(ISSUE, "queue and database writes, extra wall time over the CLI",
               [100 * (q["wall_s"] / c["wall_s"] - 1) for q, c in zip(queued, cli, strict=True)], "%",
               target=("<", 10)),
        figure(ISSUE, "evaluation throughput through the queue", [q["items_per_s"] for q in queued], "items/s",
               comparison=compare("the CLI", [c["items_per_s"] for c in cli], "items/s")),
        figure(ISSUE, "generated tokens through the queue", [q["generated_tokens_per_s"] for q in queued],
               "tokens/s", comparison=compare("the CLI", [c["generated_tokens_per_s"] for c in cli], "tokens/s")),
    ]
    print(json.dumps({
        "benchmark": "evaluations", "quick": QUICK, "figures": figures,
        "model": {"preset": MODEL, "train_steps": TRAIN_STEPS, "train_wall_s": round(train_s, 1),
                  "run_status": run.status},
        "cli": cli, "through_the_queue": queued,
    }, indent=2))


if __name__ == "__main__":
    main()
