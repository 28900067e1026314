from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "apps.registry"
    label = "registry"
    verbose_name = "Model registry"

    def ready(self):
        from apps.evaluations.signals import evaluation_finished
        from apps.registry import evidence
        from apps.registry.selectors import version_init_source
        from apps.runs.services import register_init_source

        def refresh(sender, evaluation_id, status, **kwargs):
            evidence.model_version_refresh_metrics(evaluation_id=evaluation_id, status=status)

        evaluation_finished.connect(refresh, dispatch_uid="registry-refresh-metrics", weak=False)
        register_init_source("version", version_init_source)
