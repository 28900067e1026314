"""Prometheus metrics (served at /metrics by prometheus_client).

Set PROMETHEUS_MULTIPROC_DIR when running several gunicorn workers so each process's samples
are aggregated.
"""

import os
import time

from django.http import HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

HTTP_REQUESTS = Counter(
    "tunixrt_http_requests_total", "HTTP requests by method, route and status.", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "tunixrt_http_request_duration_seconds", "HTTP request latency by route.", ["route"]
)
TRACES_CREATED = Counter("tunixrt_traces_created_total", "Traces stored.", ["source"])
TRACE_DUPLICATES = Counter("tunixrt_trace_duplicates_total", "Trace submissions that duplicated stored content.")
CACHE_FALLBACKS = Counter("tunixrt_cache_fallbacks_total",
                          "Cache operations that failed and fell back to the database.", ["operation"])
DEPENDENCY_ERRORS = Counter("tunixrt_dependency_errors_total",
                            "Requests answered 503 because a dependency was unreachable.", ["dependency"])
CURATION_EVENTS = Counter("tunixrt_curation_events_total", "Curation changes by action and new status.",
                          ["action", "to_status"])


class RequestMetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        # The resolved route pattern, not the raw path, keeps label cardinality bounded.
        match = getattr(request, "resolver_match", None)
        route = match.route if match and match.route else "unmatched"
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        HTTP_LATENCY.labels(route).observe(time.perf_counter() - started)
        return response


def metrics_view(request):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        payload = generate_latest(registry)
    else:
        payload = generate_latest()
    return HttpResponse(payload, content_type=CONTENT_TYPE_LATEST)
