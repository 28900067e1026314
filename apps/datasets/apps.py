from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "apps.datasets"
    label = "datasets"
    verbose_name = "Datasets"

    def ready(self):
        from apps.core.jobs import JobKind, register_job_kind
        from apps.datasets.builds import enqueue_dataset_build
        from apps.datasets.models import DatasetBuild

        register_job_kind(JobKind(name="dataset_build", model=DatasetBuild, enqueue=enqueue_dataset_build))
