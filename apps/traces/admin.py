from django import forms
from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from apps.core.admin_extensions import ExtensibleModelAdmin
from apps.core.admin_paginator import EstimatedCountPaginator
from apps.core.errors import DomainError
from apps.traces import services
from apps.traces.models import CurationEvent, Trace, TraceScore, TraceStatus
from apps.traces.selectors import trace_compare


class _DistinctValueFilter(admin.SimpleListFilter):
    """Filter by the distinct values of an indexed column (sources and categories are few)."""

    field = ""

    def lookups(self, request, model_admin):
        values = (Trace.objects.exclude(**{self.field: ""}).order_by(self.field)
                  .values_list(self.field, flat=True).distinct()[:200])
        return [(v, v) for v in values]

    def queryset(self, request, queryset):
        return queryset.filter(**{self.field: self.value()}) if self.value() else queryset


class SourceFilter(_DistinctValueFilter):
    title = parameter_name = field = "source"


class CategoryFilter(_DistinctValueFilter):
    title = parameter_name = field = "category"


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=2000)


class TagForm(ReasonForm):
    tags = forms.CharField(help_text="Comma-separated tags to add.", max_length=500)


class TraceEditForm(forms.ModelForm):
    edit_reason = forms.CharField(required=False, max_length=2000,
                                  help_text="Why the content changed (kept in the audit log).")

    class Meta:
        model = Trace
        fields = ["trace_version", "prompt", "final_answer", "steps", "meta"]


class CurationEventInline(admin.TabularInline):
    model = CurationEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "action", "from_status", "to_status", "reason", "actor_label", "tags_added"]
    readonly_fields = fields
    ordering = ["-created_at"]

    def has_add_permission(self, request, obj=None):
        return False


class TraceScoreInline(admin.TabularInline):
    model = TraceScore
    extra = 0
    can_delete = False
    fields = ["created_at", "scorer", "scorer_version", "score", "details"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Trace)
class TraceAdmin(ExtensibleModelAdmin):
    """The curation desk. Other apps add actions and filters with `TraceAdmin.add_action` /
    `add_list_filter` (apps.core.admin_extensions)."""

    form = TraceEditForm
    list_display = ["short_prompt", "status", "source", "category", "step_count", "latest_score", "created_at"]
    list_filter = ["status", SourceFilter, CategoryFilter, "created_at"]
    search_fields = ["prompt", "final_answer", "content_hash"]
    list_select_related = ["created_by"]
    raw_id_fields = ["created_by"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 50
    readonly_fields = ["id", "status", "source", "category", "tags", "step_count", "content_hash", "created_at",
                       "updated_at", "created_by", "rendered_steps"]
    fieldsets = [
        (None, {"fields": ["id", "status", "prompt", "rendered_steps", "final_answer"]}),
        ("Edit content", {"classes": ["collapse"],
                          "fields": ["trace_version", "steps", "meta", "edit_reason"]}),
        ("Provenance", {"fields": ["source", "category", "tags", "step_count", "content_hash", "created_at",
                                   "updated_at", "created_by"]}),
    ]
    inlines = [TraceScoreInline, CurationEventInline]
    actions = ["approve", "reject", "mark_needs_review", "add_tags", "compare_two"]

    def get_queryset(self, request):
        latest = TraceScore.objects.filter(trace=OuterRef("pk")).order_by("-created_at", "-id").values("score")[:1]
        return super().get_queryset(request).annotate(latest_score_value=Subquery(latest))

    @admin.display(description="prompt")
    def short_prompt(self, obj):
        return obj.prompt if len(obj.prompt) <= 80 else obj.prompt[:77] + "…"

    @admin.display(description="score", ordering="latest_score_value")
    def latest_score(self, obj):
        value = getattr(obj, "latest_score_value", None)
        return "—" if value is None else f"{value:.0f}"

    @admin.display(description="steps (rendered)")
    def rendered_steps(self, obj):
        if not obj.steps:
            return "—"
        rows = format_html_join("", "<li><b>{}</b> <i>{}</i> — {}</li>",
                                ((s["i"], s["type"], s["content"]) for s in obj.steps))
        return format_html('<ol style="list-style:none;padding-left:0">{}</ol>', rows)

    def has_add_permission(self, request):
        return False  # traces arrive through the API, ingest or generators

    def save_model(self, request, obj, form, change):
        data = {key: form.cleaned_data[key] for key in ("trace_version", "prompt", "final_answer", "steps", "meta")}
        try:
            services.trace_edit(trace=obj, data=data, reason=form.cleaned_data.get("edit_reason", ""),
                                actor=request.user)
        except DomainError as exc:
            messages.error(request, f"Not saved: {exc.message}")

    def _with_reason(self, request, queryset, title, apply, form_class=ReasonForm):
        """Two-step bulk action: first show a form asking why, then apply it."""
        form = form_class(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            apply(form.cleaned_data)
            return None
        context = {**self.admin_site.each_context(request), "title": title, "form": form, "queryset": queryset,
                   "action": request.POST.get("action"), "opts": self.model._meta,
                   "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME}
        return TemplateResponse(request, "admin/traces/action_reason.html", context)

    def _review(self, request, queryset, to_status):
        def apply(data):
            result = services.trace_bulk_review(traces=queryset, to_status=to_status, reason=data["reason"],
                                                actor=request.user)
            self.message_user(request, f"{result['moved']} trace(s) now {to_status}; "
                                       f"{result['skipped']} skipped (already there or not allowed).")
        return self._with_reason(request, queryset, f"Mark {queryset.count()} trace(s) {to_status}", apply)

    @admin.action(description="Approve selected traces", permissions=["review"])
    def approve(self, request, queryset):
        return self._review(request, queryset, TraceStatus.APPROVED)

    @admin.action(description="Reject selected traces", permissions=["review"])
    def reject(self, request, queryset):
        return self._review(request, queryset, TraceStatus.REJECTED)

    @admin.action(description="Mark selected traces as needing review", permissions=["review"])
    def mark_needs_review(self, request, queryset):
        return self._review(request, queryset, TraceStatus.NEEDS_REVIEW)

    @admin.action(description="Add tags to selected traces", permissions=["review"])
    def add_tags(self, request, queryset):
        def apply(data):
            count = services.trace_tag(traces=queryset, tags=data["tags"].split(","), reason=data["reason"],
                                       actor=request.user)
            self.message_user(request, f"Tagged {count} trace(s).")
        return self._with_reason(request, queryset, "Add tags", apply, form_class=TagForm)

    @admin.action(description="Compare two selected traces side by side")
    def compare_two(self, request, queryset):
        traces = list(queryset[:3])
        if len(traces) != 2:
            self.message_user(request, "Select exactly two traces to compare.", level=messages.WARNING)
            return None
        compare = trace_compare(base=traces[0], other=traces[1])
        context = {**self.admin_site.each_context(request), "title": "Compare traces", "compare": compare,
                   "sides": [compare["base"], compare["other"]], "opts": self.model._meta}
        return TemplateResponse(request, "admin/traces/compare.html", context)

    def has_review_permission(self, request):
        return request.user.has_perm("traces.review_trace")


@admin.register(CurationEvent)
class CurationEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "trace", "action", "from_status", "to_status", "actor_label", "reason"]
    list_filter = ["action", "to_status", "created_at"]
    list_select_related = ["trace"]
    raw_id_fields = ["trace", "actor"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    search_fields = ["reason", "actor_label"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # the audit log is append-only

    def has_delete_permission(self, request, obj=None):
        return False
