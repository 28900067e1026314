"""`make demo`: the whole product on the embedded default (SQLite and a file-based queue), in one command.

admin user + API key → seeded, approved and audited traces → immutable dataset versions and the eval set →
a Celery worker on the embedded queue → the built-in model trained through the `train` queue → evaluated
through the `eval` queue → promoted to `reasoner` → `champion` moved through the regression gate → the
leaderboard and the URLs to look at. Every number printed is measured in this run. Running it again
reuses the run, evaluation and version that already exist.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import DomainError
from apps.core.models import FINAL_JOB_STATUSES, JobStatus
from apps.core.services import api_key_create
from apps.evaluations.models import Evaluation
from apps.evaluations.selectors import leaderboard
from apps.registry.models import ModelAlias, RegisteredModel
from apps.registry.services import model_alias_move, model_version_promote
from apps.runs.models import TrainingRun
from apps.runs.services import training_run_plan, training_run_submit
from training.recipes import BEST_BUILTIN, BEST_DATASET

TRAIN_DATASET = BEST_DATASET
EVAL_SET = "eval-v1"
# About four minutes of training on a 2-core CPU, so the whole demo stays near five.
DEMO_STEPS = 900
MODEL_NAME = "reasoner"
BASE_URL = "http://127.0.0.1:8000"


def _latest_loss(run: TrainingRun) -> str:
    loss = run.metrics.order_by("-step").values_list("loss", flat=True).first()
    return "steps" if loss is None else f"steps, loss {loss:.3f}"


class Command(BaseCommand):
    help = "Run the tunix-rt pipeline end to end on the embedded default, through the job queue."

    def add_arguments(self, parser):
        parser.add_argument("--model", default="small", choices=["tiny", "small"], help="built-in preset")
        parser.add_argument("--steps", type=int, default=DEMO_STEPS, help=f"training steps (default {DEMO_STEPS})")
        parser.add_argument("--eval-items", type=int, default=0, help="eval-v1 items to evaluate (0 = all 250)")
        parser.add_argument("--skip-train", action="store_true", help="stop after building the datasets")

    def handle(self, *args, **options):
        if not settings.DEMO_MODE:
            # The demo creates the superuser admin / admin: never on a server that is not a local demo.
            raise CommandError("manage.py demo runs only in demo mode (TUNIXRT_DEMO=1, as `make demo` sets): "
                               "it creates the superuser admin / admin.")
        if options["steps"] < 1:
            raise CommandError("--steps must be at least 1.")
        started = time.monotonic()
        out = Path(settings.DATA_DIR) / "demo"
        out.mkdir(parents=True, exist_ok=True)
        self._step("1/7 admin user and API key")
        user = self._admin_user()
        self._api_key(user, out)
        self._step("2/7 seed traces, dataset versions and the eval set")
        call_command("seed_datasets", stdout=self.stdout, stderr=self.stderr)
        if options["skip_train"]:
            return
        self._eval_items = options["eval_items"]
        run = self._find_run(user, options)
        evaluation = self._find_evaluation(run, options)
        worker = None
        if run is None or evaluation is None:
            self._step("3/7 a Celery worker on the embedded queue")
            worker = self._start_worker(out)
        try:
            self._step(f"4/7 train the built-in '{options['model']}' model for {options['steps']} steps (train queue)")
            run = run or self._train(user, options)
            self._step(f"5/7 evaluate it on {EVAL_SET} (eval queue)")
            evaluation = evaluation or self._evaluate(run)
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(timeout=60)
        self._step(f"6/7 promote it to '{MODEL_NAME}' and move 'champion' through the gate")
        self._promote(user, run)
        self._step("7/7 the leaderboard")
        self._leaderboard(user, run, evaluation)
        self.stdout.write(self.style.SUCCESS(
            f"\nDone in {time.monotonic() - started:,.0f} s. Next: `make serve`, then open {BASE_URL}/admin/ "
            f"(admin / admin), or call the API with the key in {out / 'api_key.txt'}."))

    # --- steps --------------------------------------------------------------------------------------

    def _config(self, options) -> dict:
        """The bench's best recipe (training.recipes) for the demo's step budget."""
        steps = options["steps"]
        return {**BEST_BUILTIN, "model": options["model"], "max_steps": steps,
                "warmup_steps": min(BEST_BUILTIN["warmup_steps"], steps // 5),
                "checkpoint_every": max(steps // 2, 1), "eval_every": 0}

    def _request(self, options) -> dict:
        return {"dataset_id": TRAIN_DATASET, "config": self._config(options), "auto_evaluate": False}

    def _find_run(self, user, options) -> TrainingRun | None:
        plan, _ = training_run_plan(data=self._request(options), user=user)
        run = (TrainingRun.objects.filter(config_hash=plan.config.config_hash(), status=JobStatus.COMPLETED,
                                          dataset_content_hash=plan.dataset.content_hash)
               .order_by("-finished_at").first())
        if run is not None:
            self.stdout.write(f"reusing completed run {run.pk} (same config and data)")
        return run

    def _find_evaluation(self, run, options) -> Evaluation | None:
        if run is None:
            return None
        evaluation = (run.evaluations.filter(eval_set_id=EVAL_SET, status=JobStatus.COMPLETED,
                                             limit=options["eval_items"] or None, section="")
                      .order_by("-finished_at").first())
        if evaluation is not None:
            self.stdout.write(f"reusing completed evaluation {evaluation.pk}")
        return evaluation

    def _start_worker(self, out: Path) -> subprocess.Popen:
        log = open(out / "worker.log", "a")  # noqa: SIM115 - the worker writes it until the demo ends
        worker = subprocess.Popen(
            [str(Path(sys.executable).with_name("celery")), "-A", "tunixrt", "worker", "-Q", "default,train,eval",
             "--pool", "solo", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
            cwd=settings.BASE_DIR, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT)
        self.stdout.write(f"worker pid {worker.pid} (log: {out / 'worker.log'})")
        return worker

    def _train(self, user, options) -> TrainingRun:
        plan, _ = training_run_plan(data=self._request(options), user=user)
        run = training_run_submit(plan=plan, user=user)
        self.stdout.write(f"queued run {run.pk}: {plan.examples} examples, "
                          f"{plan.report()['estimate']['total_tokens']:,} tokens")
        run = self._follow(TrainingRun, run.pk, lambda r: (r.steps_completed, r.max_steps, _latest_loss(r)))
        if run.status != JobStatus.COMPLETED:
            raise CommandError(f"training {run.status}: {run.error}\n(worker log in {settings.DATA_DIR}/demo)")
        self.stdout.write(f"completed {run.steps_completed} steps in {run.duration_seconds:,.0f} s, final loss "
                          f"{run.final_loss:.4f}, {run.tokens_per_s or 0:,.0f} tokens/s")
        return run

    def _evaluate(self, run: TrainingRun) -> Evaluation:
        from apps.evaluations.services import evaluation_request

        request = {"eval_set": EVAL_SET}
        if self._eval_items:
            request["limit"] = self._eval_items
        evaluation = evaluation_request(run=run, data=request, user=run.created_by)
        evaluation = self._follow(Evaluation, evaluation.pk, lambda e: (e.progress_done, e.item_count, "items"))
        if evaluation.status != JobStatus.COMPLETED:
            raise CommandError(f"evaluation {evaluation.status}: {evaluation.error}")
        metrics = evaluation.metrics
        interval = f"95 % CI {evaluation.ci_low:.1%}–{evaluation.ci_high:.1%}"
        self.stdout.write(f"{evaluation.item_count} items in {evaluation.duration_seconds:,.0f} s: answer accuracy "
                          f"{metrics['answer_accuracy']:.1%} ({interval}), format {metrics['format_compliance']:.1%}")
        for name, row in sorted(metrics["by_section"].items()):
            self.stdout.write(f"  section {name:<22} {row['count']:>4} items  {row['answer_accuracy']:>6.1%}")
        for name, row in sorted(metrics["by_category"].items()):
            self.stdout.write(f"  category {name:<21} {row['count']:>4} items  {row['answer_accuracy']:>6.1%}")
        return evaluation

    def _follow(self, model, pk, progress):
        """A progress bar until the job ends (a line per 10 % when output is not a terminal)."""
        tty, shown = self.stdout.isatty(), -1
        while True:
            row = model.objects.get(pk=pk)
            done, total, unit = progress(row)
            fraction = done / total if total else 0.0
            if tty or int(fraction * 10) > shown:
                shown = int(fraction * 10)
                bar = "#" * int(fraction * 30)
                line = f"  [{bar:<30}] {done}/{total or '?'} {unit} ({row.status})"
                self.stdout.write(("\r" + line) if tty else line, ending="" if tty else "\n")
                self.stdout.flush()
            if row.status in FINAL_JOB_STATUSES:
                if tty:
                    self.stdout.write("")
                return row
            time.sleep(1)

    def _promote(self, user, run) -> None:
        model, _ = RegisteredModel.objects.get_or_create(name=MODEL_NAME, defaults={"created_by": user,
                                                          "description": "The built-in model the demo trains."})
        version, created = model_version_promote(model=model, data={"run_id": str(run.pk)}, user=user)
        self.stdout.write(f"{'promoted' if created else 'already promoted'}: {version} "
                          f"({version.size_bytes / 1e6:.1f} MB in content-addressed storage)")
        current = ModelAlias.objects.filter(model=model, name="champion").select_related("version").first()
        if current is not None and current.version_id == version.pk:
            self.stdout.write(f"champion is already {version}")
            return
        try:
            event = model_alias_move(model=model, alias="champion", data={"version": version.label}, user=user,
                                     actor_label="demo")
        except DomainError as exc:
            self.stdout.write(self.style.WARNING(f"champion stays {current.version if current else None}: "
                                                 f"{exc.message}"))
            return
        check = event.regression_check
        why = (f"regression check {check.result}: {check.current_value:.1%} vs {check.baseline_value:.1%}"
               if check else "the first champion")
        self.stdout.write(f"champion → {version} ({why})")

    def _leaderboard(self, user, run, evaluation) -> None:
        rows = [row for row in leaderboard(user=user, filters={"eval_set": EVAL_SET})
                if all(getattr(row, key) == getattr(evaluation, key) for key in ("eval_set_hash", "judge_key",
                                                                                  "section", "limit"))]
        self.stdout.write(f"{'rank':>4}  {'evaluation':<10} {'run':<10} {'model':<8} {'accuracy':>9}  95 % CI")
        for row in rows[:10]:
            mark = "  ← this run" if row.pk == evaluation.pk else ""
            self.stdout.write(f"{row.rank:>4}  {str(row.pk)[:8]:<10} {str(row.run_id)[:8]:<10} "
                              f"{row.run.model:<8} {row.primary_score:>9.1%}  {row.ci_low:.1%}–{row.ci_high:.1%}{mark}")
        version = run.model_versions.first()
        self.stdout.write(f"\nrun:         {BASE_URL}/admin/runs/trainingrun/{run.pk}/change/")
        self.stdout.write(f"evaluation:  {BASE_URL}/admin/evaluations/evaluation/{evaluation.pk}/change/")
        self.stdout.write(f"leaderboard: {BASE_URL}/admin/evaluations/evaluation/leaderboard/")
        if version is not None:
            self.stdout.write(f"lineage:     {BASE_URL}/admin/registry/modelversion/{version.pk}/lineage/")
        self.stdout.write(f"API:         {BASE_URL}/api/tunix/evaluations?eval_set={EVAL_SET}")

    # --- set-up -------------------------------------------------------------------------------------

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
