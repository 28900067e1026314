"""Error pages: JSON in the API's error shape under /api/, Django's pages elsewhere."""

import sys

from django.http import HttpResponse, JsonResponse
from django.views import defaults

from apps.core.metrics import DEPENDENCY_ERRORS
from apps.core.middleware import is_connection_error


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "not_found", "detail": f"No API endpoint at {request.path}."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """The last net: an unreachable database anywhere (middleware included) is a 503, not a 500."""
    exception = sys.exc_info()[1]
    if exception is not None and is_connection_error(exception):
        DEPENDENCY_ERRORS.labels("database").inc()
        if request.path.startswith("/api/"):
            return JsonResponse({"error": "service_unavailable", "detail": "The database is unavailable; retry "
                                                                         "later."}, status=503)
        return HttpResponse("The database is unavailable; retry later.", status=503, content_type="text/plain")
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "server_error", "detail": "Internal error; it has been logged."}, status=500)
    return defaults.server_error(request)
