from django.apps import AppConfig


class PipelineConfig(AppConfig):
    """Orchestration above the other apps (the demo): it may import any app; no app imports it."""

    name = "apps.pipeline"
    label = "pipeline"
    verbose_name = "Pipeline"
