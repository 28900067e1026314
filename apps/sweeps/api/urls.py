from django.urls import path

from apps.sweeps.api import views

urlpatterns = [
    path("tuning/jobs", views.SweepListCreateView.as_view(), name="sweep-list"),
    path("tuning/jobs/<str:sweep_id>", views.SweepDetailView.as_view(), name="sweep-detail"),
    path("tuning/jobs/<str:sweep_id>/start", views.SweepStartView.as_view(), name="sweep-start"),
    path("tuning/jobs/<str:sweep_id>/cancel", views.SweepCancelView.as_view(), name="sweep-cancel"),
]
