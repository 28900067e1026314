from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "apps.registry"
    label = "registry"
    verbose_name = "Model registry"

    def ready(self):
        from apps.evaluations.signals import evaluation_finished
        from apps.registry import evidence

        def refresh(sender, evaluation_id, status, **kwargs):
            evidence.model_version_refresh_metrics(evaluation_id=evaluation_id, status=status)

        evaluation_finished.connect(refresh, dispatch_uid="registry-refresh-metrics", weak=False)
