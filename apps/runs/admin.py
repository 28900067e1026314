"""Runs in the admin: a filterable list, and a run page with its config, live log tail, loss and
learning-rate charts (server-rendered SVG, refreshed while the run is live), artifacts and a cancel
button that asks for confirmation. A GRPO run's page charts its rewards, KL, lengths and timings and lists
its sampled completions with the judges' verdicts. The start forms (SFT, and GRPO from a completed run or
a model version) go through the same service as `POST /api/tunix/run`."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from apps.core.admin_paginator import EstimatedCountPaginator
from apps.core.charts import Series, line_chart
from apps.core.errors import DomainError
from apps.core.lookups import as_int
from apps.core.models import ACTIVE_JOB_STATUSES, JobStatus
from apps.datasets.models import DatasetVersion
from apps.datasets.selectors import datasets_visible_to
from apps.runs import selectors, services
from apps.runs.models import Algorithm, TrainingRun
from training.recipes import BEST_BUILTIN
from training.rewards import JUDGE_NAMES

CANCEL_PERMISSION = "runs.cancel_trainingrun"
START_PERMISSION = "runs.add_trainingrun"


class ParentFields(forms.Form):
    """The weights a run starts from: a completed run of `parent_backends` (its latest checkpoint) or a model
    version."""

    parent_backends = ("builtin",)  # SFT continues builtin runs only; GRPO also trains from tunix runs
    field_order = ["dataset", "parent_run", "parent_version"]
    parent_run = forms.ModelChoiceField(queryset=TrainingRun.objects.none(), required=False, label="start from run",
                                        help_text="A completed run; its latest checkpoint.")
    parent_version = forms.CharField(required=False, label="or from model version",
                                     help_text="A model version id (leave the run empty).")

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset"].queryset = datasets_visible_to(user).defer("manifest").order_by("-created_at")
        self.fields["parent_run"].queryset = (selectors.runs_visible_to(user)
                                              .filter(status=JobStatus.COMPLETED, backend__in=self.parent_backends)
                                              .order_by("-finished_at"))

    def init_from(self) -> dict:
        data = self.cleaned_data
        if data["parent_run"] is not None:
            return {"init_from": {"run": str(data["parent_run"].pk)}}
        return {"init_from": {"version": data["parent_version"].strip()}} if data["parent_version"].strip() else {}


class StartRunForm(ParentFields):
    """The common TrainConfig fields, defaulting to the builtin model's best recipe (training.recipes); the API
    takes every field (POST /api/tunix/run). A parent run or version makes it continue those weights."""

    dataset = forms.ModelChoiceField(queryset=DatasetVersion.objects.none(), to_field_name="pk")
    model = forms.ChoiceField(choices=[("tiny", "tiny (tests, seconds)"), ("small", "small (the demo model)")],
                              initial="small")
    tokenizer = forms.ChoiceField(choices=[("spm", "spm (SentencePiece learned on the run's data)"),
                                           ("spm_letters", "spm_letters (the same, quoted words spelled letter "
                                                           "by letter)"),
                                           ("byte", "byte (UTF-8 bytes)")], initial=BEST_BUILTIN["tokenizer"])
    packing = forms.BooleanField(required=False, initial=True,
                                 help_text="Pack several examples per row (no padding computed).")
    max_steps = forms.IntegerField(min_value=1, initial=1000)
    batch_size = forms.IntegerField(min_value=1, initial=BEST_BUILTIN["batch_size"])
    learning_rate = forms.FloatField(min_value=1e-6, max_value=1, initial=BEST_BUILTIN["learning_rate"])
    warmup_steps = forms.IntegerField(min_value=0, initial=BEST_BUILTIN["warmup_steps"])
    max_seq_len = forms.IntegerField(min_value=16, initial=BEST_BUILTIN["max_seq_len"])
    checkpoint_every = forms.IntegerField(min_value=0, initial=200)
    seed = forms.IntegerField(min_value=0, initial=0)
    auto_evaluate = forms.BooleanField(required=False, initial=True,
                                       help_text="Evaluate the final checkpoint on the default eval set.")

    def request_body(self, dry_run: bool) -> dict:
        data = self.cleaned_data
        config = {key: data[key] for key in ("model", "tokenizer", "packing", "max_steps", "batch_size",
                                             "learning_rate", "warmup_steps", "max_seq_len", "checkpoint_every",
                                             "seed")}
        # The recipe's settings the form does not show (schedule, weight decay, clipping, vocabulary) come along.
        config = {**BEST_BUILTIN, **config}
        return {"dataset_id": data["dataset"].pk, "config": config, "dry_run": dry_run,
                "auto_evaluate": data["auto_evaluate"], **self.init_from()}


class StartGRPOForm(ParentFields):
    """A GRPO run from a completed builtin or tunix run (or a model version) on a dataset's prompts and answers;
    it trains on its parent's backend."""

    parent_backends = services.GRPO_PARENT_BACKENDS

    dataset = forms.ModelChoiceField(queryset=DatasetVersion.objects.none(), to_field_name="pk",
                                     help_text="Its traces' prompts and final answers are what GRPO samples and "
                                               "judges against.")
    max_steps = forms.IntegerField(min_value=1, initial=100)
    prompts_per_step = forms.IntegerField(min_value=1, initial=8)
    group_size = forms.IntegerField(min_value=2, initial=8, help_text="Completions sampled per prompt (G).")
    max_new_tokens = forms.IntegerField(min_value=1, initial=128)
    temperature = forms.FloatField(min_value=0.01, max_value=10, initial=1.0)
    learning_rate = forms.FloatField(min_value=1e-7, max_value=1, initial=1e-4)
    beta = forms.FloatField(min_value=0, initial=0.04, label="KL weight (beta)")
    weight_answer_exact = forms.FloatField(min_value=0, initial=1.0, label="answer_exact weight")
    weight_format = forms.FloatField(min_value=0, initial=0.5, label="format weight")
    weight_reasoning_checks = forms.FloatField(min_value=0, initial=0.0, label="reasoning_checks weight")
    checkpoint_every = forms.IntegerField(min_value=0, initial=50)
    seed = forms.IntegerField(min_value=0, initial=0)
    auto_evaluate = forms.BooleanField(required=False, initial=True,
                                       help_text="Evaluate the final checkpoint on the default eval set.")

    def request_body(self, dry_run: bool) -> dict:
        data = self.cleaned_data
        config = {key: data[key] for key in ("max_steps", "prompts_per_step", "group_size", "max_new_tokens",
                                             "temperature", "learning_rate", "beta", "checkpoint_every", "seed")}
        weights = {name: data[f"weight_{name}"] for name in JUDGE_NAMES if data[f"weight_{name}"]}
        return {"dataset_id": data["dataset"].pk, "algorithm": "grpo", "config": config,
                "reward": {"judges": weights}, "dry_run": dry_run, "auto_evaluate": data["auto_evaluate"],
                **self.init_from()}


class DatasetFilter(admin.SimpleListFilter):
    title = parameter_name = "dataset"

    def lookups(self, request, model_admin):
        ids = (TrainingRun.objects.order_by("dataset_version_id").values_list("dataset_version_id", flat=True)
               .distinct()[:100])
        return [(i, i) for i in ids]

    def queryset(self, request, queryset):
        return queryset.filter(dataset_version_id=self.value()) if self.value() else queryset


def run_charts(run_id) -> str:
    metrics = selectors.run_metrics(run_id, max_points=600)
    if "reward_mean" in metrics:
        return grpo_charts(metrics)
    loss = line_chart([Series("loss", metrics["step"], metrics["loss"]),
                       Series("eval loss", metrics["step"], metrics["eval_loss"])], title="loss by step")
    lr = line_chart([Series("learning rate", metrics["step"], metrics["lr"])], title="learning rate by step",
                    height=160)
    speed = line_chart([Series("tokens/s", metrics["step"], metrics["tokens_per_s"])], title="tokens/s by step",
                       height=160)
    return f'<div class="run-charts">{loss}{lr}{speed}</div>'


def grpo_charts(metrics: dict) -> str:
    """Reward mean ± std (total and per judge), the groups without signal, KL, lengths, clip fraction,
    entropy, and each step's time split into sampling and update."""
    steps = metrics["step"]

    def series(*names):
        return [Series(label, steps, metrics[name]) for name, label in names if name in metrics]

    mean, std = metrics["reward_mean"], metrics.get("reward_std") or [None] * len(steps)
    band = [[m + d if m is not None and d is not None else None for m, d in zip(mean, std, strict=True)],
            [m - d if m is not None and d is not None else None for m, d in zip(mean, std, strict=True)]]
    judges = [(f"reward_{name}_mean", name) for name in JUDGE_NAMES]
    charts = [
        line_chart([Series("reward mean", steps, mean), Series("mean + std", steps, band[0]),
                    Series("mean - std", steps, band[1])], title="reward (weighted total) by step"),
        line_chart(series(*judges), title="each judge's pass rate by step", height=180),
        line_chart(series(("zero_signal_fraction", "groups with equal rewards"), ("truncated_fraction", "truncated"),
                          ("clip_fraction", "clipped tokens")), title="fractions by step", height=180),
        line_chart(series(("kl", "KL to the starting model")), title="KL by step", height=160),
        line_chart(series(("completion_length_mean", "mean"), ("completion_length_max", "max")),
                   title="completion length (tokens) by step", height=160),
        line_chart(series(("entropy", "entropy")), title="entropy by step", height=160),
        line_chart(series(("sample_seconds", "sampling"), ("update_seconds", "update")),
                   title="seconds per step", height=160),
    ]
    return f'<div class="run-charts">{"".join(charts)}</div>'


COMPLETIONS_PAGE = 20


def completions_context(request, run: TrainingRun) -> dict:
    """The run page's completions table: `?failed=<judge>` and `?completions_offset=` from the query."""
    failed = request.GET.get("failed")
    failed = failed if failed in JUDGE_NAMES else None
    offset = max(0, as_int(request.GET.get("completions_offset")) or 0)
    try:
        rows = selectors.run_completions(run, {"failed": failed})
    except DomainError as exc:  # the store is away: the page still shows, and says so
        return {"completions_error": exc.message}
    return {"completions": rows[offset:offset + COMPLETIONS_PAGE], "completions_total": len(rows),
            "completions_failed": failed, "judge_names": JUDGE_NAMES,
            "completions_next": offset + COMPLETIONS_PAGE if offset + COMPLETIONS_PAGE < len(rows) else None,
            "completions_previous": max(0, offset - COMPLETIONS_PAGE) if offset else None}


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["short_id", "status", "algorithm", "dataset_version_id", "model", "backend", "steps",
                    "final_loss_display", "duration", "attempts", "queued_at"]
    list_filter = ["status", "algorithm", "backend", "model", DatasetFilter, "queued_at"]
    search_fields = ["=id", "dataset_version__id", "config_hash"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    ordering = ["-queued_at"]
    change_form_template = "admin/runs/trainingrun/change_form.html"
    fieldsets = [
        (None, {"fields": ["id", "status", "algorithm", "parent_link", "dataset_link", "split", "backend", "model",
                           "steps", "attempts", "final_loss", "tokens_per_s", "mfu_estimate", "duration",
                           "error_code", "error"]}),
        ("Provenance", {"classes": ["collapse"],
                        "fields": ["config_pretty", "config_hash", "dataset_content_hash", "seed", "code_version",
                                   "device", "timings", "created_by", "worker", "queued_at", "started_at",
                                   "first_step_at", "finished_at", "heartbeat_at", "traceback"]}),
    ]
    readonly_fields = [field for _, options in fieldsets for field in options["fields"]]
    actions = ["cancel_runs"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by")

    @admin.display(description="run", ordering="id")
    def short_id(self, obj):
        return str(obj.pk)[:8]

    @admin.display(description="dataset")
    def dataset_link(self, obj):
        url = reverse("admin:datasets_datasetversion_change", args=[obj.dataset_version_id])
        return format_html('<a href="{}">{}</a>', url, obj.dataset_version_id)

    @admin.display(description="starts from")
    def parent_link(self, obj):
        if obj.init_run_id is None:
            return "—"
        url = reverse("admin:runs_trainingrun_change", args=[obj.init_run_id])
        version = obj.init_from.get("version")
        return format_html('<a href="{}">run {}</a> at step {}{}', url, str(obj.init_run_id)[:8], obj.init_step,
                           f" (model version {version})" if version else "")

    @admin.display(description="steps")
    def steps(self, obj):
        return f"{obj.steps_completed} / {obj.max_steps}"

    @admin.display(description="attempt")
    def attempts(self, obj):
        return f"{obj.attempt} / {obj.max_attempts}"

    @admin.display(description="final loss", ordering="final_loss")
    def final_loss_display(self, obj):
        return "—" if obj.final_loss is None else f"{obj.final_loss:.4f}"

    @admin.display(description="duration")
    def duration(self, obj):
        seconds = obj.duration_seconds
        return "—" if seconds is None else f"{seconds:,.0f} s"

    @admin.display(description="config")
    def config_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.config, indent=2, sort_keys=True))

    def has_add_permission(self, request):
        return False  # runs start through POST /api/tunix/run (validated, dry-run first)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and (obj is None or obj.status not in ACTIVE_JOB_STATUSES)

    def has_cancel_permission(self, request):
        return request.user.has_perm(CANCEL_PERMISSION)

    @admin.action(description="Cancel selected runs", permissions=["cancel"])
    def cancel_runs(self, request, queryset):
        cancelled = skipped = 0
        for run in queryset:
            try:
                services.training_run_cancel(run=run)
                cancelled += 1
            except DomainError:
                skipped += 1
        self.message_user(request, f"Cancel requested for {cancelled} run(s); {skipped} had already finished.")

    def has_start_permission(self, request):
        return request.user.has_perm(START_PERMISSION)

    def start_view(self, request, form_class=StartRunForm, title="Start a training run"):
        """A form over POST /api/tunix/run: check the plan first (a dry run), then start it."""
        if not self.has_start_permission(request):
            raise PermissionDenied
        form = form_class(request.POST or None, user=request.user)
        plan = None
        if request.method == "POST" and form.is_valid():
            try:
                plan, _ = services.training_run_plan(data=form.request_body(dry_run=True), user=request.user)
                if "start" in request.POST:
                    run = services.training_run_submit(plan=plan, user=request.user)
                    self.message_user(request, f"Queued run {run.pk}; it starts when a worker takes it.")
                    return redirect(reverse("admin:runs_trainingrun_change", args=[run.pk]))
            except DomainError as exc:
                form.add_error(None, exc.message)
                plan = None
        context = {**self.admin_site.each_context(request), "title": title, "form": form,
                   "plan": plan.report() if plan else None, "opts": self.model._meta}
        return TemplateResponse(request, "admin/runs/trainingrun/start.html", context)

    def start_grpo_view(self, request):
        return self.start_view(request, StartGRPOForm, "Start a GRPO run")

    def get_urls(self):
        return [
            path("start/", self.admin_site.admin_view(self.start_view), name="runs_trainingrun_start"),
            path("start-grpo/", self.admin_site.admin_view(self.start_grpo_view), name="runs_trainingrun_start_grpo"),
            path("<uuid:run_id>/charts/", self.admin_site.admin_view(self.charts_view), name="runs_trainingrun_charts"),
            path("<uuid:run_id>/cancel/", self.admin_site.admin_view(self.cancel_view), name="runs_trainingrun_cancel"),
            *super().get_urls(),
        ]

    def _run(self, request, run_id) -> TrainingRun:
        run = TrainingRun.objects.filter(pk=run_id).first()
        if run is None or not self.has_view_permission(request, run):
            raise PermissionDenied
        return run

    def charts_view(self, request, run_id):
        run = self._run(request, run_id)
        return HttpResponse(run_charts(run.pk), content_type="text/html; charset=utf-8")

    def cancel_view(self, request, run_id):
        run = self._run(request, run_id)
        if not self.has_cancel_permission(request):
            raise PermissionDenied
        change_url = reverse("admin:runs_trainingrun_change", args=[run.pk])
        if request.method == "POST":
            try:
                services.training_run_cancel(run=run)
                self.message_user(request, "Cancel requested; the run stops after its current step.")
            except DomainError as exc:
                self.message_user(request, exc.message, level=messages.WARNING)
            return redirect(change_url)
        context = {**self.admin_site.each_context(request), "title": "Cancel this training run?", "run": run,
                   "opts": self.model._meta, "change_url": change_url}
        return TemplateResponse(request, "admin/runs/trainingrun/cancel_confirmation.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = TrainingRun.objects.filter(pk=object_id).first()
        extra = {}
        if run is not None:
            extra = {"run": run, "charts": run_charts(run.pk), "live": run.status in ACTIVE_JOB_STATUSES,
                     "artifacts": selectors.run_artifacts(run)[:200],
                     "logs_url": reverse("run-logs", kwargs={"run_id": run.pk}),
                     "charts_url": reverse("admin:runs_trainingrun_charts", args=[run.pk]),
                     "cancel_url": reverse("admin:runs_trainingrun_cancel", args=[run.pk]),
                     "may_cancel": self.has_cancel_permission(request) and run.status in ACTIVE_JOB_STATUSES}
            if run.algorithm == Algorithm.GRPO:
                extra |= completions_context(request, run)
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})
