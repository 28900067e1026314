"""Prometheus metrics (served at /metrics by prometheus_client).

Set PROMETHEUS_MULTIPROC_DIR when running several gunicorn workers so each process's samples
are aggregated.
"""

import os
import time

import redis
from django.conf import settings
from django.db.models import Count
from django.http import HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

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
INGEST_LINES = Counter("tunixrt_ingest_lines_total", "NDJSON ingest lines by outcome.", ["outcome"])
INGEST_SECONDS = Histogram("tunixrt_ingest_duration_seconds", "Time to validate and store one NDJSON upload.")
CURATION_EVENTS = Counter("tunixrt_curation_events_total", "Curation changes by action and new status.",
                          ["action", "to_status"])
SERVED_COMPLETIONS = Counter("tunixrt_chat_completions_total",
                             "Chat completions answered by /v1/chat/completions (or the playground), by outcome.",
                             ["outcome"])
SERVED_TOKENS = Counter("tunixrt_chat_completion_tokens_total", "Tokens of served chat completions.", ["kind"])
SERVED_BATCH = Histogram("tunixrt_chat_completion_batch_rows", "Rows of the decode a chat completion was part of.",
                         buckets=(1, 2, 4, 8, 16))


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


class StateCollector:
    """Read at scrape time: background jobs by kind and status (from their rows) and the number of
    messages waiting in each queue of the broker."""

    def collect(self):
        from apps.core.jobs import job_kinds

        jobs = GaugeMetricFamily("tunixrt_jobs", "Background jobs by kind and status.", labels=["kind", "status"])
        for kind in job_kinds():
            for status, count in kind.model.objects.order_by().values_list("status").annotate(n=Count("pk")):
                jobs.add_metric([kind.name, status], count)
        yield jobs
        depth = GaugeMetricFamily("tunixrt_queue_depth", "Messages waiting per broker queue.", labels=["queue"])
        for queue, count in queue_depths().items():
            depth.add_metric([queue], count)
        yield depth


def queue_depths() -> dict:
    """{queue: waiting messages} for the Redis broker (or the embedded file queue's total)."""
    url = settings.CELERY_BROKER_URL
    try:
        if url.startswith(("redis://", "rediss://")):
            client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
            try:
                return {queue: client.llen(queue) for queue in QUEUES}
            finally:
                client.close()
        if url.startswith("filesystem://"):
            return {"all": len(os.listdir(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]))}
    except (redis.RedisError, OSError):
        return {}
    return {}


QUEUES = ("default", "train", "eval")


def metrics_view(request):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    payload = generate_latest(registry) + generate_latest(_STATE)
    return HttpResponse(payload, content_type=CONTENT_TYPE_LATEST)


# The state collector reads the database, so it lives in its own registry, read only by /metrics.
_STATE = CollectorRegistry()
_STATE.register(StateCollector())
