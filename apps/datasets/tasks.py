from apps.core.tasks import job_task
from apps.datasets.builds import dataset_build_run


@job_task("apps.datasets.tasks.dataset_build_task")
def dataset_build_task(build_id: str) -> str | None:
    return dataset_build_run(build_id=build_id)
