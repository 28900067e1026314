from django.urls import path

from apps.registry.api import views

urlpatterns = [
    path("models", views.ModelListCreateView.as_view(), name="model-list"),
    path("models/versions/<str:version_id>", views.ModelVersionDetailView.as_view(), name="model-version-detail"),
    path("models/versions/<str:version_id>/download", views.ModelVersionDownloadView.as_view(),
         name="model-version-download"),
    path("models/versions/<str:version_id>/evaluate", views.ModelVersionEvaluateView.as_view(),
         name="model-version-evaluate"),
    path("models/versions/<str:version_id>/lineage", views.ModelVersionLineageView.as_view(),
         name="model-version-lineage"),
    path("models/<str:model_ref>", views.ModelDetailView.as_view(), name="model-detail"),
    path("models/<str:model_ref>/versions", views.ModelVersionListView.as_view(), name="model-versions"),
    path("models/<str:model_ref>/versions/promote", views.PromoteView.as_view(), name="model-promote"),
    path("models/<str:model_ref>/aliases/<str:alias>", views.AliasView.as_view(), name="model-alias"),
    path("tuning/jobs/<str:sweep_id>/promote", views.SweepPromoteView.as_view(), name="sweep-promote"),
    path("traces/<str:trace_id>/lineage", views.TraceLineageView.as_view(), name="trace-lineage"),
]
