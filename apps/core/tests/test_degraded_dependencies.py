"""A dependency that fails: with the cache down, requests fall back to the database (counted) and health
says `degraded`; with the database down, API requests answer 503 in the error shape, and anonymous
health names the dependency, never its address."""

import socket
import threading
from unittest import mock

import pytest
from django.core.cache import caches
from django.db import OperationalError, connections
from django.test import override_settings

DEAD_REDIS = {"default": {"BACKEND": "apps.core.cache_backend.RedisCache", "LOCATION": "redis://127.0.0.1:1/0",
                          "KEY_PREFIX": "tunixrt", "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}}}


@pytest.fixture
def dead_cache():
    with override_settings(CACHES=DEAD_REDIS, CACHE_URL="redis://127.0.0.1:1/0"):
        caches._settings = caches.settings = caches.configure_settings(None)
        yield
    caches._settings = caches.settings = caches.configure_settings(None)


@pytest.fixture
def silent_cache(settings):
    """A Redis address that accepts connections and never answers (a hung server or a dropped route),
    configured with the production settings' own cache options."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)  # the kernel completes handshakes; nothing ever reads or replies
    url = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    silent = {"default": {**settings.CACHES["default"], "LOCATION": url}}
    with override_settings(CACHES=silent, CACHE_URL=url):
        caches._settings = caches.settings = caches.configure_settings(None)
        yield
    caches._settings = caches.settings = caches.configure_settings(None)
    listener.close()


def _fallbacks() -> float:
    from apps.core.metrics import CACHE_FALLBACKS

    return sum(sample.value for metric in CACHE_FALLBACKS.collect() for sample in metric.samples
               if sample.name.endswith("_total"))


@pytest.mark.django_db
def test_with_the_cache_down_requests_read_the_database_and_health_is_degraded(write_client, trace_body,
                                                                                 anon_client, dead_cache):
    before = _fallbacks()
    created = write_client.post("/api/traces", trace_body(), format="json")
    assert created.status_code == 201, created.content
    listed = write_client.get("/api/traces")
    assert listed.status_code == 200 and listed.json()["count"] == 1
    assert _fallbacks() > before
    health = anon_client.get("/api/health")
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert health.json()["checks"]["cache"] == {**health.json()["checks"]["cache"], "ok": False}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_cache_that_never_answers_times_out_into_the_database_instead_of_hanging(write_client, trace_body,
                                                                                  silent_cache):
    before, answers = _fallbacks(), []

    def read():
        try:
            answers.append(write_client.get("/api/traces"))
        finally:
            connections.close_all()  # this thread's database connection

    request = threading.Thread(target=read, daemon=True)
    request.start()
    request.join(timeout=60)  # liveness only: without socket timeouts this request never returns
    assert answers and answers[0].status_code == 200
    assert _fallbacks() > before


@pytest.mark.django_db
def test_with_the_database_down_an_api_request_is_a_503(write_client):
    with mock.patch("apps.traces.selectors.trace_list", side_effect=OperationalError("connection refused")):
        response = write_client.get("/api/traces?status=approved")
    assert response.status_code == 503
    assert response.json()["error"] == "service_unavailable"


@pytest.mark.django_db
def test_a_database_failure_outside_a_view_is_a_503_too(client):
    with mock.patch("django.contrib.sessions.backends.db.SessionStore.load",
                    side_effect=OperationalError("could not connect to server")):
        client.cookies["sessionid"] = "x" * 32
        response = client.get("/api/traces")
    assert response.status_code == 503 and response.json()["error"] == "service_unavailable"


@pytest.mark.django_db
@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0", CELERY_TASK_ALWAYS_EAGER=False)
def test_anonymous_health_says_what_is_down_not_where(anon_client):
    body = anon_client.get("/api/health").json()
    assert body["checks"]["broker"] == {**body["checks"]["broker"], "ok": False, "error": "unreachable"}
    assert "127.0.0.1" not in str(body) and "6379" not in str(body)
