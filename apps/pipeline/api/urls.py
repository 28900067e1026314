from django.urls import path

from apps.pipeline.api import views

urlpatterns = [
    path("tunix/runs/import", views.RunImportView.as_view(), name="run-import"),
]
