"""What the evaluations app does when other apps announce something (their signals)."""

from pathlib import Path

from apps.evaluations import services


def queue_auto_evaluation(sender, run_id, status, **kwargs):
    services.evaluation_queue_for_completed_run(run_id=run_id, status=status)


def load_published_eval_set(sender, folder, **kwargs):
    services.eval_set_load(folder=Path(folder))


def eval_set_exists(eval_set_id: str) -> bool:
    from apps.evaluations.models import EvalSet

    return EvalSet.objects.filter(pk=eval_set_id).exists()


def report_sweep_trial(sender, evaluation_id, status, **kwargs):
    """An evaluation of a sweep trial's run ended: its metrics are the trial's value."""
    from apps.evaluations.models import Evaluation
    from apps.runs.sweeps import sweep_trial_report

    evaluation = Evaluation.objects.filter(pk=evaluation_id, auto=True).first()
    if evaluation is None or evaluation.run_id is None:
        return
    if status == "completed":
        sweep_trial_report(run_id=evaluation.run_id, metrics=evaluation.metrics)
    else:
        sweep_trial_report(run_id=evaluation.run_id, failure=f"evaluation {status}: {evaluation.error}")
