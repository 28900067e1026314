from django.urls import path

from apps.datasets.api import views

urlpatterns = [
    path("datasets", views.DatasetListView.as_view(), name="dataset-list"),
    path("datasets/build", views.DatasetBuildView.as_view(), name="dataset-build"),
    path("datasets/ingest", views.DatasetIngestView.as_view(), name="dataset-ingest"),
    path("datasets/builds/<str:build_id>", views.DatasetBuildStatusView.as_view(), name="dataset-build-status"),
    path("datasets/<str:dataset_id>", views.DatasetDetailView.as_view(), name="dataset-detail"),
    path("datasets/<str:dataset_id>/export.jsonl", views.DatasetExportView.as_view(), name="dataset-export"),
    path("tunix/sft/export", views.TunixSftExportView.as_view(), name="tunix-sft-export"),
    path("tunix/sft/manifest", views.TunixSftManifestView.as_view(), name="tunix-sft-manifest"),
    path("ungar/status", views.UngarStatusView.as_view(), name="ungar-status"),
    path("ungar/high-card-duel/generate", views.UngarGenerateView.as_view(), name="ungar-generate"),
    path("ungar/high-card-duel/export.jsonl", views.UngarExportView.as_view(), name="ungar-export"),
]
