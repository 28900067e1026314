"""The registry in the admin: models with their versions, aliases and alias history; a version page
with its provenance and files; and the lineage page that walks leaderboard row → evaluation → model
version → run → dataset version → traces and their curation events. (apps.serving adds the version's
playground to this page.)"""

from django.contrib import admin
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from apps.core.admin_extensions import ReadOnlyAdmin, ReadOnlyInline
from apps.core.errors import NotFound
from apps.core.lookups import as_int
from apps.registry import selectors
from apps.registry.models import AliasEvent, ModelAlias, ModelVersion, RegisteredModel


class VersionInline(ReadOnlyInline):
    model = ModelVersion
    fields = ["version_link", "source_run", "checkpoint_step", "accuracy", "size_bytes", "created_at"]
    ordering = ["-number"]

    @admin.display(description="version")
    def version_link(self, obj):
        return format_html('<a href="{}">{}</a>', reverse("admin:registry_modelversion_change", args=[obj.pk]),
                           obj.label)

    @admin.display(description="answer accuracy")
    def accuracy(self, obj):
        value = (obj.metrics or {}).get("answer_accuracy")
        return "—" if value is None else f"{value:.1%}"



class AliasInline(ReadOnlyInline):
    model = ModelAlias
    fields = ["name", "version", "updated_at"]



class AliasEventInline(ReadOnlyInline):
    model = AliasEvent
    fields = ["at", "alias", "outcome", "from_version", "to_version", "actor_label", "forced", "reason",
              "regression_check"]
    ordering = ["-at"]



@admin.register(RegisteredModel)
class RegisteredModelAdmin(ReadOnlyAdmin):
    list_display = ["name", "description", "created_by", "created_at"]
    search_fields = ["name"]
    readonly_fields = ["name", "description", "created_by", "created_at"]
    inlines = [AliasInline, VersionInline, AliasEventInline]


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "source_run", "checkpoint_step", "dataset_version", "created_at"]
    list_filter = ["model", "backend"]
    list_select_related = ["model"]
    fields = ["model", "label", "lineage_link", "source_run", "checkpoint_step", "backend", "model_preset",
              "config_hash", "dataset_version", "dataset_content_hash", "code_version", "base_weights_sha256",
              "tokenizer_sha256", "base_model_dir", "base_weights_included", "size_bytes", "metrics",
              "metrics_evaluation", "created_by", "created_at"]

    @admin.display(description="lineage")
    def lineage_link(self, obj):
        return format_html('<a href="{}">run → dataset → traces → curation events</a>',
                           reverse("admin:registry_modelversion_lineage", args=[obj.pk]))

    def get_urls(self):
        return [path("<uuid:version_id>/lineage/", self.admin_site.admin_view(self.lineage_view),
                     name="registry_modelversion_lineage"), *super().get_urls()]

    def lineage_view(self, request, version_id):
        version = version_or_404(request, version_id)
        offset = as_int(request.GET.get("offset", ""), maximum=10**9) or 0
        lineage = selectors.version_lineage(version, user=request.user, trace_offset=offset, trace_limit=50)
        shown = len(lineage["traces"]["results"])
        context = {**self.admin_site.each_context(request), "title": f"Lineage of {version}", "version": version,
                   "lineage": lineage, "opts": self.model._meta, "next_offset": offset + 50,
                   "previous_offset": max(0, offset - 50), "first_shown": offset + 1 if shown else 0,
                   "last_shown": offset + shown}
        return TemplateResponse(request, "admin/registry/modelversion/lineage.html", context)


def version_or_404(request, version_id) -> ModelVersion:
    try:
        return selectors.version_get(user=request.user, version_id=version_id)
    except NotFound:
        raise Http404("No such model version.") from None
