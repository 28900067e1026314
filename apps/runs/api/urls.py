from django.urls import path, re_path

from apps.runs.api import views

RUN = "tunix/runs/<str:run_id>"

urlpatterns = [
    path("tunix/status", views.TunixStatusView.as_view(), name="tunix-status"),
    path("tunix/run", views.TunixRunView.as_view(), name="tunix-run"),
    path("tunix/runs", views.RunListView.as_view(), name="run-list"),
    path(RUN, views.RunDetailView.as_view(), name="run-detail"),
    path(f"{RUN}/status", views.RunStatusView.as_view(), name="run-status"),
    path(f"{RUN}/logs", views.RunLogsView.as_view(), name="run-logs"),
    path(f"{RUN}/cancel", views.RunCancelView.as_view(), name="run-cancel"),
    path(f"{RUN}/metrics", views.RunMetricsView.as_view(), name="run-metrics"),
    path(f"{RUN}/artifacts", views.RunArtifactListView.as_view(), name="run-artifacts"),
    path(f"{RUN}/completions", views.RunCompletionsView.as_view(), name="run-completions"),
    # Artifact names are paths inside the run's output folder (checkpoints/30/params/...).
    re_path(r"^tunix/runs/(?P<run_id>[^/]+)/artifacts/(?P<name>.+)/download$", views.RunArtifactDownloadView.as_view(),
            name="run-artifact-download"),
]
