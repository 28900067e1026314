"""What the evaluations app does when other apps announce something (their signals)."""

from pathlib import Path

from apps.evaluations import services


def queue_auto_evaluation(sender, run_id, status, **kwargs):
    services.evaluation_queue_for_completed_run(run_id=run_id, status=status)


def load_published_eval_set(sender, folder, **kwargs):
    services.eval_set_load(folder=Path(folder))
