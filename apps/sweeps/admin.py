"""Sweeps in the admin: their trials, and the metric against each searched parameter."""

from django.contrib import admin
from django.utils.safestring import mark_safe

from apps.core.admin_extensions import ReadOnlyInline
from apps.core.charts import scatter_chart
from apps.sweeps.models import SweepJob, SweepTrial


class SweepTrialInline(ReadOnlyInline):
    model = SweepTrial
    fields = ["number", "params", "state", "value", "run", "error", "finished_at"]
    ordering = ["number"]


def sweep_charts(sweep: SweepJob) -> str:
    """The metric against each searched parameter, one small scatter chart per parameter."""
    trials = list(sweep.trials.filter(state="complete").order_by("number"))
    best = sweep.best_trial.number if sweep.best_trial_id else None
    charts = []
    for name, spec in sweep.search_space.items():
        values = [t.params.get(name) for t in trials]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        xs = values if numeric else [spec.get("values", []).index(v) if v in spec.get("values", []) else None
                                     for v in values]
        charts.append(scatter_chart(xs, [t.value for t in trials], title=f"{sweep.metric} by {name}", x_label=name,
                                    log_x=spec.get("type") == "loguniform", highlight=best))
    return "".join(charts)


@admin.register(SweepJob)
class SweepJobAdmin(admin.ModelAdmin):
    list_display = ["__str__", "status", "dataset_version_id", "metric", "direction", "trials_done", "best_value",
                    "created_at"]
    list_filter = ["status", "metric"]
    readonly_fields = ["name", "status", "dataset_version", "base_config", "search_space", "metric", "direction",
                       "n_trials", "max_concurrent", "seed", "eval_set", "eval_limit", "best_trial", "error",
                       "created_by", "created_at", "started_at", "finished_at", "charts"]
    fields = readonly_fields
    inlines = [SweepTrialInline]

    @admin.display(description="trials")
    def trials_done(self, obj):
        return f"{obj.trials.exclude(state='running').count()} / {obj.n_trials}"

    @admin.display(description="best")
    def best_value(self, obj):
        return "—" if obj.best_trial_id is None else f"{obj.best_trial.value:.4g} (trial {obj.best_trial.number})"

    @admin.display(description="metric by parameter")
    def charts(self, obj):
        return mark_safe(f'<div style="display:flex;flex-wrap:wrap;gap:8px">{sweep_charts(obj)}</div>')  # noqa: S308

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
