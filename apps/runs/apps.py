from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "apps.runs"
    label = "runs"
    verbose_name = "Training runs"

    def ready(self):
        from apps.core.jobs import JobKind, register_job_kind
        from apps.runs.models import TrainingRun
        from apps.runs.services import enqueue_training_run, training_run_announce_finished

        register_job_kind(JobKind(name="training_run", model=TrainingRun, enqueue=enqueue_training_run,
                                  finished=training_run_announce_finished))
