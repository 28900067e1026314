from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.core.metrics import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/", include("apps.core.api.urls")),
    path("api/", include("apps.traces.api.urls")),
    path("api/", include("apps.datasets.api.urls")),
    # Before the runs URLs: "tunix/runs/import" would otherwise read as a run id.
    path("api/", include("apps.pipeline.api.urls")),
    path("api/", include("apps.runs.api.urls")),
    path("api/", include("apps.evaluations.api.urls")),
    path("api/", include("apps.sweeps.api.urls")),
    path("api/", include("apps.registry.api.urls")),
    path("v1/", include("apps.serving.api.urls")),
]

handler404 = "apps.core.views.not_found"
handler500 = "apps.core.views.server_error"
