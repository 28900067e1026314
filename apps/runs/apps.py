from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "apps.runs"
    label = "runs"
    verbose_name = "Training runs"

    def ready(self):
        from apps.core.jobs import JobKind, register_job_kind
        from apps.runs.models import TrainingRun
        from apps.runs.services import enqueue_training_run

        register_job_kind(JobKind(name="training_run", model=TrainingRun, enqueue=enqueue_training_run))

        from apps.runs.signals import training_run_finished
        from apps.runs.sweeps import sweep_run_finished

        def trial_run_finished(sender, run_id, status, **kwargs):
            sweep_run_finished(run_id=run_id, status=status)

        training_run_finished.connect(trial_run_finished, dispatch_uid="runs-sweep-trials", weak=False)
