"""Evaluations in the admin: the leaderboard (with CI bars), an evaluation page with its per-category
table and a link to its predictions (filterable to the wrong ones or one category; a wrong one shows
prompt, expected, output, extracted answer and the judge that failed), baselines and their checks."""

from itertools import groupby

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from apps.core.admin_extensions import ReadOnlyAdmin, ReadOnlyInline
from apps.core.admin_paginator import EstimatedCountPaginator
from apps.core.charts import interval_chart
from apps.core.errors import DomainError
from apps.evaluations import selectors, services
from apps.evaluations.models import EvalSet, Evaluation, Prediction, RegressionBaseline, RegressionCheck


@admin.register(EvalSet)
class EvalSetAdmin(ReadOnlyAdmin):
    list_display = ["id", "item_count", "content_hash"]
    readonly_fields = ["id", "name", "version", "content_hash", "item_count", "manifest", "created_at"]


def _percent(value) -> str:
    return "—" if value is None else f"{value:.1%}"


@admin.register(Evaluation)
class EvaluationAdmin(ReadOnlyAdmin):
    list_display = ["short_id", "status", "source", "eval_set", "run_link", "score", "interval", "items", "judge_key",
                    "finished_at"]
    list_filter = ["status", "source", "eval_set", "auto", "section"]
    search_fields = ["=id", "=run__id"]
    list_select_related = ["eval_set"]
    show_full_result_count = False
    change_form_template = "admin/evaluations/evaluation/change_form.html"
    fields = ["id", "status", "source", "eval_set", "eval_set_hash", "run_link", "checkpoint_step", "section", "limit",
              "judges", "generation", "item_count", "progress_done", "score", "interval", "error_code", "error",
              "queued_at", "started_at", "finished_at", "attempt", "worker"]
    readonly_fields = fields
    actions = ["cancel_evaluations"]

    def has_cancel_permission(self, request):
        return request.user.has_perm("evaluations.cancel_evaluation")

    @admin.action(description="Cancel selected evaluations", permissions=["cancel"])
    def cancel_evaluations(self, request, queryset):
        cancelled = skipped = 0
        for evaluation in queryset:
            try:
                services.evaluation_cancel(evaluation=evaluation)
                cancelled += 1
            except DomainError:
                skipped += 1
        self.message_user(request, f"Cancel requested for {cancelled} evaluation(s); {skipped} had already "
                                   "finished. Running ones stop after their current batch and keep their predictions.",
                          level=messages.INFO)

    def get_urls(self):
        return [path("leaderboard/", self.admin_site.admin_view(self.leaderboard_view),
                     name="evaluations_evaluation_leaderboard"), *super().get_urls()]

    @admin.display(description="evaluation")
    def short_id(self, obj):
        return str(obj.pk)[:8]

    @admin.display(description="run")
    def run_link(self, obj):
        if obj.run_id is None:
            return "—"
        return format_html('<a href="{}">{}</a>', reverse("admin:runs_trainingrun_change", args=[obj.run_id]),
                           str(obj.run_id)[:8])

    @admin.display(description="answer accuracy", ordering="primary_score")
    def score(self, obj):
        return _percent(obj.primary_score)

    @admin.display(description="95 % CI")
    def interval(self, obj):
        return "—" if obj.ci_low is None else f"{obj.ci_low:.1%} – {obj.ci_high:.1%}"

    @admin.display(description="items")
    def items(self, obj):
        return f"{obj.progress_done} / {obj.item_count}"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        evaluation = Evaluation.objects.filter(pk=object_id).first()
        extra = {}
        if evaluation is not None:
            metrics = evaluation.metrics or {}
            extra = {"evaluation": evaluation, "overall": metrics,
                     "groups": [(key[3:], sorted((metrics.get(key) or {}).items()))
                                for key in ("by_category", "by_section", "by_difficulty")],
                     "predictions_url": reverse("admin:evaluations_prediction_changelist")
                     + f"?evaluation__id__exact={evaluation.pk}"}
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def leaderboard_view(self, request):
        rows = list(selectors.leaderboard(user=request.user, filters={"source": "all"})
                    .prefetch_related("run__model_versions__model")
                    [:500])
        groups = []
        def comparable(e):
            return (e.eval_set_id, *[getattr(e, field) for field in selectors.COMPARABLE])

        for key, members in groupby(rows, key=comparable):
            members = list(members)
            chart = interval_chart([(f"#{e.rank} {(e.run.model if e.run else '?')} {str(e.pk)[:8]}", e.primary_score,
                                     e.ci_low, e.ci_high) for e in members[:25]],
                                   title=f"answer accuracy on {key[0]}" + (" (imported)" if key[5] == "imported"
                                                                           else ""))
            groups.append({"eval_set": key[0], "judge_key": key[2], "section": key[3] or "all", "limit": key[4],
                           "source": key[5], "rows": members, "chart": chart})
        context = {**self.admin_site.each_context(request), "title": "Leaderboard", "groups": groups,
                   "opts": self.model._meta}
        return TemplateResponse(request, "admin/evaluations/evaluation/leaderboard.html", context)


class CorrectFilter(admin.SimpleListFilter):
    title = "answer"
    parameter_name = "correct"

    def lookups(self, request, model_admin):
        return [("0", "wrong"), ("1", "right")]

    def queryset(self, request, queryset):
        return queryset.filter(correct=self.value() == "1") if self.value() in ("0", "1") else queryset


@admin.register(Prediction)
class PredictionAdmin(ReadOnlyAdmin):
    list_display = ["item_id", "category", "expected", "extracted_answer", "correct", "format_ok", "reasoning_ok",
                    "failed"]
    list_filter = [CorrectFilter, "format_ok", "item__category", "item__section", "item__difficulty"]
    list_select_related = ["item"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fields = ["evaluation", "item_id", "prompt", "expected", "raw_output_pre", "extracted_answer", "failed",
              "correct", "format_ok", "reasoning_ok", "reasoning_details", "llm_judge", "output_tokens", "stopped",
              "latency_s"]
    readonly_fields = fields

    @admin.display(description="item", ordering="item__position")
    def item_id(self, obj):
        return obj.item.item_id

    @admin.display(description="category")
    def category(self, obj):
        return obj.item.category

    @admin.display(description="expected")
    def expected(self, obj):
        return obj.item.expected_answer

    @admin.display(description="prompt")
    def prompt(self, obj):
        return obj.item.prompt

    @admin.display(description="output")
    def raw_output_pre(self, obj):
        return format_html('<pre style="white-space:pre-wrap">{}</pre>', obj.raw_output)

    @admin.display(description="failed judges")
    def failed(self, obj):
        names = [name for name, ok in (("answer_exact", obj.correct), ("format", obj.format_ok),
                                       ("reasoning_checks", obj.reasoning_ok)) if ok is False]
        return ", ".join(names) or "—"


class CheckInline(ReadOnlyInline):
    model = RegressionCheck
    fields = ["created_at", "evaluation", "result", "baseline_value", "current_value", "delta", "paired_ci_low",
              "paired_ci_high", "created_by"]


@admin.register(RegressionBaseline)
class RegressionBaselineAdmin(ReadOnlyAdmin):
    list_display = ["name", "kind", "metric", "eval_set", "tolerance", "tolerance_mode", "decision", "lower_is_better",
                    "created_at"]
    list_filter = ["kind"]
    readonly_fields = ["name", "kind", "gate_scope", "metric", "eval_set", "evaluation", "lower_is_better", "tolerance",
                       "tolerance_mode", "decision", "created_by", "created_at"]
    inlines = [CheckInline]


@admin.register(RegressionCheck)
class RegressionCheckAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "baseline", "evaluation", "result", "baseline_value", "current_value", "delta"]
    list_filter = ["result", "baseline"]
    list_select_related = ["baseline"]
    readonly_fields = ["baseline", "evaluation", "result", "metric", "baseline_value", "current_value", "delta",
                       "delta_pct", "paired_ci_low", "paired_ci_high", "paired_items", "decision",
                       "minimum_detectable_effect", "details", "created_by",
                       "created_at"]
