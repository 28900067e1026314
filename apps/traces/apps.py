from django.apps import AppConfig


class TracesConfig(AppConfig):
    name = "apps.traces"
    label = "traces"
    verbose_name = "Traces and curation"

    def ready(self):
        from apps.core.jobs import Backlog, register_backlog
        from apps.traces.services import trace_scores_resend_due

        register_backlog(Backlog(name="trace_scores", resend=trace_scores_resend_due))
