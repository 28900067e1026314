from django.urls import path

from apps.traces.api import views

urlpatterns = [
    path("traces", views.TraceListCreateView.as_view(), name="trace-list"),
    path("traces/batch", views.TraceBatchView.as_view(), name="trace-batch"),
    path("traces/compare", views.TraceCompareView.as_view(), name="trace-compare"),
    path("traces/<str:trace_id>", views.TraceDetailView.as_view(), name="trace-detail"),
    path("traces/<str:trace_id>/score", views.TraceScoreView.as_view(), name="trace-score"),
    path("traces/<str:trace_id>/review", views.TraceReviewView.as_view(), name="trace-review"),
]
