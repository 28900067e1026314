from django.apps import AppConfig


class EvaluationsConfig(AppConfig):
    name = "apps.evaluations"
    label = "evaluations"
    verbose_name = "Evaluations and regression gates"

    def ready(self):
        from apps.core.jobs import JobKind, register_job_kind
        from apps.datasets.signals import eval_set_published
        from apps.evaluations import receivers
        from apps.evaluations.models import Evaluation
        from apps.evaluations.services import enqueue_evaluation, evaluation_announce_finished
        from apps.runs.signals import training_run_finished

        register_job_kind(JobKind(name="evaluation", model=Evaluation, enqueue=enqueue_evaluation,
                                  finished=evaluation_announce_finished))
        training_run_finished.connect(receivers.queue_auto_evaluation, dispatch_uid="evaluations-auto")
        eval_set_published.connect(receivers.load_published_eval_set, dispatch_uid="evaluations-load-set")
