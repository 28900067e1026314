from apps.core.tasks import job_task
from apps.evaluations.launcher import evaluation_launch


@job_task("apps.evaluations.tasks.evaluation_task")
def evaluation_task(evaluation_id: str) -> str | None:
    return evaluation_launch(evaluation_id=evaluation_id)
