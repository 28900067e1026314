from django.apps import AppConfig


class SweepsConfig(AppConfig):
    name = "apps.sweeps"
    label = "sweeps"
    verbose_name = "Hyperparameter sweeps"

    def ready(self):
        from apps.evaluations.models import Evaluation
        from apps.evaluations.signals import evaluation_finished
        from apps.runs.signals import training_run_finished
        from apps.sweeps.services import sweep_trial_run_finished

        def run_finished(sender, run_id, status, **kwargs):
            sweep_trial_run_finished(run_id=run_id)

        def evaluation_ended(sender, evaluation_id, status, **kwargs):
            run_id = Evaluation.objects.filter(pk=evaluation_id, auto=True).values_list("run_id", flat=True).first()
            if run_id is not None:
                sweep_trial_run_finished(run_id=run_id)

        # Connected after the evaluations app's auto-evaluation receiver (INSTALLED_APPS order), so a trial
        # whose run completed finds its evaluation queued; if not, the trial is settled with the reason.
        training_run_finished.connect(run_finished, dispatch_uid="sweeps-trial-runs", weak=False)
        evaluation_finished.connect(evaluation_ended, dispatch_uid="sweeps-trial-evaluations", weak=False)
