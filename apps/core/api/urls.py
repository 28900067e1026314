from django.urls import path

from apps.core.api.views import HealthView, RediHealthView

urlpatterns = [
    path("health", HealthView.as_view(), name="health"),
    path("redi/health", RediHealthView.as_view(), name="redi-health"),
]
