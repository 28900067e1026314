"""`make demo`: the whole pipeline on the embedded default, in one command.

admin user + API key → seeded traces (approved, audited) → immutable dataset versions → tunix_sft
export → train the built-in JAX model → evaluate it on eval-v1 with the real judges → a summary.
Every number it prints is measured in this run.
"""

import json
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from apps.core.services import api_key_create
from apps.datasets.models import DatasetVersion
from apps.datasets.selectors import dataset_export_chunks
from training.engine import train
from training.evaluate import evaluate
from training.hooks import TrainHooks

TRAIN_DATASET = "dev-reasoning-v1"
EVAL_ITEMS = Path("eval-v1") / "items.jsonl"


class ProgressHooks(TrainHooks):
    """Prints a progress line every `every` steps."""

    def __init__(self, write, every: int, total: int):
        self.write, self.every, self.total = write, every, total
        self.started = time.monotonic()

    def on_step(self, metrics: dict) -> None:
        step = metrics.get("step", 0)
        if step % self.every == 0 or step == self.total:
            self.write(f"  step {step:>5}/{self.total}  loss {metrics.get('loss', float('nan')):.4f}  "
                       f"{metrics.get('tokens_per_s', 0):,.0f} tok/s  {time.monotonic() - self.started:,.0f}s")


class Command(BaseCommand):
    help = "Run the tunix-rt pipeline end to end on the embedded default (SQLite, in-process tasks)."

    def add_arguments(self, parser):
        parser.add_argument("--model", default="small", choices=["tiny", "small"], help="built-in preset")
        parser.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
        parser.add_argument("--eval-items", type=int, default=60, help="eval-v1 items to evaluate (0 = all)")
        parser.add_argument("--skip-train", action="store_true", help="stop after building the datasets")

    def handle(self, *args, **options):
        if options["steps"] < 1:
            raise CommandError("--steps must be at least 1.")
        out = Path(settings.DATA_DIR) / "demo"
        out.mkdir(parents=True, exist_ok=True)
        self._step("1/5 admin user and API key")
        user = self._admin_user()
        self._api_key(user, out)
        self._step("2/5 seed traces, dataset versions and the eval set")
        call_command("seed_datasets", stdout=self.stdout, stderr=self.stderr)
        if options["skip_train"]:
            return self._finish(out, None)
        self._step(f"3/5 export {TRAIN_DATASET} (train split) as tunix_sft")
        data_path = self._export(out)
        self._step(f"4/5 train the built-in '{options['model']}' model for {options['steps']} steps")
        run_dir = self._train(options["model"], options["steps"], data_path, out)
        self._step("5/5 evaluate on eval-v1 with the answer/format judges")
        summary = self._evaluate(run_dir, options["eval_items"], out)
        return self._finish(out, summary)

    def _print_summary(self, summary: dict) -> None:
        self.stdout.write(f"{'slice':<28}{'items':>6}{'answer acc':>12}{'format ok':>11}")
        rows = [("all", summary)] + [(f"category {k}", v) for k, v in sorted(summary["by_category"].items())] + \
            [(f"section {k}", v) for k, v in sorted(summary["by_section"].items())]
        for name, row in rows:
            self.stdout.write(f"{name:<28}{row['count']:>6}{row['answer_accuracy']:>12.1%}"
                              f"{row['format_compliance']:>11.1%}")
        self.stdout.write(f"stopped at end-of-turn: {summary.get('stopped_rate', 0):.1%} "
                          "(full report: eval_summary.json, per item: predictions.jsonl)")

    def _step(self, title: str) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"\n== {title}"))

    def _admin_user(self):
        users = get_user_model()
        user = users.objects.filter(username="admin").first()
        if user is None:
            user = users.objects.create_superuser("admin", "admin@localhost", "admin")
            self.stdout.write("created superuser admin / admin (demo only; change it for anything shared)")
        else:
            self.stdout.write("superuser admin already exists")
        return user

    def _api_key(self, user, out: Path) -> None:
        key_file = out / "api_key.txt"
        if key_file.exists():
            self.stdout.write(f"demo API key kept in {key_file}")
            return
        _, token = api_key_create(user=user, name="demo", scope="write")
        key_file.write_text(token + "\n")
        key_file.chmod(0o600)
        self.stdout.write(f"write-scoped API key saved to {key_file}")

    def _export(self, out: Path) -> Path:
        version = DatasetVersion.objects.get(pk=TRAIN_DATASET)
        path = out / f"{TRAIN_DATASET}.train.tunix_sft.jsonl"
        with path.open("wb") as handle:
            for chunk in dataset_export_chunks(dataset=version, fmt="tunix_sft", split="train"):
                handle.write(chunk)
        lines = sum(1 for _ in path.open())
        self.stdout.write(f"{lines} lines → {path} (dataset hash {version.content_hash[:16]}…)")
        return path

    def _train(self, model: str, steps: int, data_path: Path, out: Path) -> Path:
        run_dir = out / f"run-{model}-{steps}"
        # The bench's tuned settings; every generated example fits 256 tokens, and a longer row would
        # only add padding to every step.
        config = {"backend": "builtin", "model": model, "max_steps": steps, "batch_size": 16,
                  "learning_rate": 4e-3, "warmup_steps": min(40, steps // 5), "max_seq_len": 256,
                  "checkpoint_every": max(steps // 2, 1), "eval_every": 0, "seed": 0}
        result = train(config, data_path, run_dir, ProgressHooks(self.stdout.write, max(steps // 10, 1), steps))
        self.stdout.write(f"{result.status}: {result.steps_completed} steps, final loss {result.final_loss:.4f} "
                          f"(resumes from {result.checkpoint_dir} if re-run)")
        return run_dir

    def _evaluate(self, run_dir: Path, limit: int, out: Path) -> dict:
        path = Path(settings.DATASETS_DIR) / EVAL_ITEMS
        items = [json.loads(line) for line in path.open()]
        items = [i for i in items if i["section"] == "in_distribution"] + \
            [i for i in items if i["section"] != "in_distribution"]
        if limit:
            items = items[:limit]
        result = evaluate(run_dir, items)
        (out / "predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in result["predictions"]))
        (out / "eval_summary.json").write_text(json.dumps(result["summary"], indent=2) + "\n")
        return result["summary"]

    def _finish(self, out: Path, summary: dict | None) -> None:
        if summary is not None:
            self._print_summary(summary)
        self.stdout.write(self.style.SUCCESS(
            f"\nDone. Files in {out}. Next: `make serve`, then open http://127.0.0.1:8000/admin/ "
            "(admin / admin) or call the API with the key in api_key.txt."))
