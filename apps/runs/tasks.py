from apps.core.tasks import job_task
from apps.runs.launcher import training_run_launch


@job_task("apps.runs.tasks.training_run_task")
def training_run_task(run_id: str) -> str | None:
    return training_run_launch(run_id=run_id)
