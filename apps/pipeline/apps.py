from django.apps import AppConfig


class PipelineConfig(AppConfig):
    """Orchestration above the other apps (the demo, the admin dashboard): it may import any app; no
    app imports it."""

    name = "apps.pipeline"
    label = "pipeline"
    verbose_name = "Pipeline"

    def ready(self):
        from django.contrib import admin

        admin.site.site_header = "tunix-rt"
        admin.site.site_title = "tunix-rt"
        admin.site.index_title = "Curation, training, evaluation, registry"
        admin.site.index_template = "admin/tunixrt_index.html"
