"""Admin for dataset versions (read-only once built) and the Trace admin's dataset hooks.

Versions are immutable, so nobody may add or change one here; they are built through the API, the
"Build dataset from selection" action on traces or `manage.py seed_datasets`. Deleting is for
superusers only (it removes the rows and, after the commit, the folder on disk) so that a mistaken
build can be thrown away and its id reused.
"""

import json

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from apps.core.admin_paginator import EstimatedCountPaginator
from apps.core.errors import DomainError
from apps.core.store import artifact_store
from apps.datasets import services, storage
from apps.datasets.builds import dataset_build_submit
from apps.datasets.models import DatasetVersion
from apps.datasets.spec import MAX_LIMIT, parse_build_request
from apps.traces.admin import TraceAdmin

MANIFEST_LIST_PREVIEW = 10
BUILD_PERMISSION = "datasets.add_datasetversion"


def manifest_preview(manifest: dict) -> dict:
    """The manifest with its per-trace lists shortened, so a 100,000-trace page stays light."""
    preview = dict(manifest)
    for key in ("trace_ids", "split_assignment"):
        values = manifest.get(key) or []
        if len(values) > MANIFEST_LIST_PREVIEW:
            preview[key] = [*values[:MANIFEST_LIST_PREVIEW], f"… {len(values) - MANIFEST_LIST_PREVIEW} more"]
    return preview


@admin.register(DatasetVersion)
class DatasetVersionAdmin(admin.ModelAdmin):
    list_display = ["id", "trace_count", "split_summary", "short_hash", "selection_strategy", "created_by",
                    "created_at"]
    list_filter = ["selection_strategy", "created_at"]
    search_fields = ["id", "name", "content_hash", "session_id"]
    list_select_related = ["created_by"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fields = ["id", "name", "version", "created_at", "created_by", "content_hash", "trace_count", "split_summary",
              "traces_link", "stats_table", "session_id", "parent", "files_on_disk", "manifest_pretty"]
    readonly_fields = fields

    def get_queryset(self, request):
        versions = super().get_queryset(request)
        match = getattr(request, "resolver_match", None)
        if match and match.url_name and match.url_name.endswith("_changelist"):
            versions = versions.defer("manifest")  # lists never need the (large) manifest
        return versions

    @admin.display(description="splits (train/val/test)")
    def split_summary(self, obj):
        return f"{obj.train_count} / {obj.val_count} / {obj.test_count}"

    @admin.display(description="content hash", ordering="content_hash")
    def short_hash(self, obj):
        return obj.content_hash[:12] + "…"

    @admin.display(description="traces")
    def traces_link(self, obj):
        url = reverse("admin:traces_trace_changelist") + f"?{InDatasetFilter.parameter_name}={obj.pk}"
        return format_html('<a href="{}">Show the {} traces of {}</a>', url, obj.trace_count, obj.pk)

    @admin.display(description="stats")
    def stats_table(self, obj):
        stats = dict(obj.stats)
        categories = stats.pop("category_counts", {})
        rows = [*stats.items(), *((f"category: {name}", count) for name, count in categories.items())]
        return format_html("<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows))

    @admin.display(description="files")
    def files_on_disk(self, obj):
        folder = storage.version_dir(obj.pk)
        state = "present" if (folder / "manifest.json").exists() else "missing"
        store = artifact_store()
        if not store.shared:
            return f"{folder} ({state})"
        try:
            stored = "present" if store.size(storage.NAMESPACE, f"{obj.pk}/manifest.json") is not None else "missing"
        except DomainError as exc:  # the store is away: say so on the page instead of failing it
            stored = exc.message
        return f"{folder} on this host ({state}); in the artifact store: {stored}"

    @admin.display(description="manifest")
    def manifest_pretty(self, obj):
        text = json.dumps(manifest_preview(obj.manifest), indent=2, sort_keys=True, ensure_ascii=False)
        return format_html('<pre style="white-space:pre-wrap;max-height:40em;overflow:auto">{}</pre>', text)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def delete_model(self, request, obj):
        services.dataset_version_delete(version=obj)

    def delete_queryset(self, request, queryset):
        for version in queryset:
            services.dataset_version_delete(version=version)


# --- extensions of the Trace admin (apps.core.admin_extensions) -------------------------------

class InDatasetFilter(admin.SimpleListFilter):
    title = "dataset version"
    parameter_name = "dataset"

    def lookups(self, request, model_admin):
        ids = DatasetVersion.objects.order_by("-created_at").values_list("id", flat=True)[:50]
        selected = self.value()
        return [(i, i) for i in ids] + ([(selected, selected)] if selected and selected not in ids else [])

    def queryset(self, request, queryset):
        return queryset.filter(dataset_items__dataset_id=self.value()) if self.value() else queryset


class BuildFromSelectionForm(forms.Form):
    dataset_name = forms.CharField(max_length=120, help_text="e.g. dev-reasoning")
    dataset_version = forms.CharField(max_length=64, help_text="e.g. v2")
    train = forms.FloatField(min_value=0, max_value=1, initial=0.9)
    val = forms.FloatField(min_value=0, max_value=1, initial=0.1)
    test = forms.FloatField(min_value=0, max_value=1, initial=0.0)
    seed = forms.IntegerField(min_value=0, initial=0, help_text="Seeds the train/val/test assignment.")
    include_unapproved = forms.BooleanField(
        required=False, help_text="Also use selected traces that are not approved (builds normally read only "
                                  "approved traces).")


def build_request_from_selection(data: dict, trace_ids: list[str], username: str) -> dict:
    return {
        "dataset_name": data["dataset_name"], "dataset_version": data["dataset_version"],
        "filters": {"ids": trace_ids, "status": "any" if data["include_unapproved"] else "approved"},
        "selection_strategy": "all", "seed": data["seed"],
        "split": {"train": data["train"], "val": data["val"], "test": data["test"]},
        "provenance": {"source": "admin selection", "selected_by": username},
    }


@admin.action(description="Build dataset from selection")
def build_dataset_from_selection(modeladmin, request, queryset):
    form = BuildFromSelectionForm(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid() and _build(modeladmin, request, queryset, form.cleaned_data):
        return None
    context = {**modeladmin.admin_site.each_context(request), "title": "Build a dataset version from the selection",
               "form": form, "selected_count": queryset.count(), "preview": queryset[:20],
               "selected_ids": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
               "select_across": request.POST.get("select_across", "0"), "action": request.POST.get("action"),
               "opts": modeladmin.model._meta, "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME}
    return TemplateResponse(request, "admin/datasets/build_from_selection.html", context)


def _build(modeladmin, request, queryset, data) -> bool:
    trace_ids = [str(i) for i in queryset.order_by().values_list("id", flat=True)[: MAX_LIMIT + 1]]
    try:
        spec = parse_build_request(build_request_from_selection(data, trace_ids, request.user.get_username()))
        answer = dataset_build_submit(spec=spec, user=request.user, actor_label=request.user.get_username())
    except DomainError as exc:
        modeladmin.message_user(request, f"Not built: {exc.message}", level=messages.ERROR)
        return False
    if answer.build is not None:
        modeladmin.message_user(request, f"Building {spec.dataset_id} from {len(trace_ids)} selected trace(s) in "
                                         "the background; it appears under Dataset versions when done.")
        return True
    version = answer.version
    url = reverse("admin:datasets_datasetversion_change", args=[version.pk])
    verb = "Built" if answer.created else "Already built (same content):"
    modeladmin.message_user(request, format_html('{} <a href="{}">{}</a> with {} of the {} selected trace(s).',
                                                 verb, url, version.pk, version.trace_count, len(trace_ids)))
    return True


TraceAdmin.add_action(build_dataset_from_selection, permission=BUILD_PERMISSION)
TraceAdmin.add_list_filter(InDatasetFilter)
