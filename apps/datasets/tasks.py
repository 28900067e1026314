from celery import shared_task

from apps.datasets.builds import dataset_build_run


@shared_task(name="apps.datasets.tasks.dataset_build_task")
def dataset_build_task(build_id: str) -> str | None:
    return dataset_build_run(build_id=build_id)
