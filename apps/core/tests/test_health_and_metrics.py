import pytest
from django.core.cache import cache
from django.test import override_settings


@pytest.mark.django_db
def test_health_checks_the_database_and_the_real_broker(anon_client):
    response = anon_client.get("/api/health")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks["database"]["ok"] and checks["database"]["vendor"] == "postgresql"
    assert checks["broker"] == {**checks["broker"], "ok": True, "mode": "broker"}


@pytest.mark.django_db
@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0", CELERY_TASK_ALWAYS_EAGER=False)
def test_health_is_503_when_the_broker_is_down(anon_client):
    response = anon_client.get("/api/health")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"]["ok"] is False
    assert "error" in response.json()["checks"]["broker"]


@pytest.mark.django_db
def test_metrics_are_prometheus_text(anon_client, write_client, trace_body):
    write_client.post("/api/traces", trace_body(), format="json")
    response = anon_client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert "tunixrt_traces_created_total" in text
    assert 'tunixrt_http_requests_total{method="POST",route="api/traces",status="201"}' in text


def test_redi_health_in_mock_mode_is_healthy(anon_client):
    response = anon_client.get("/api/redi/health")
    assert response.status_code == 200
    assert response.json()["mode"] == "mock"


@override_settings(REDIAI_MODE="real", REDIAI_BASE_URL="http://127.0.0.1:1", REDIAI_HEALTH_TTL_S=60)
def test_redi_health_in_real_mode_reports_down_and_caches_the_probe(anon_client):
    cache.clear()
    first = anon_client.get("/api/redi/health")
    second = anon_client.get("/api/redi/health")
    assert first.status_code == 503 and first.json()["status"] == "down"
    assert first.json()["cached"] is False and second.json()["cached"] is True
    cache.clear()


def test_unknown_api_paths_are_json_404(anon_client):
    response = anon_client.get("/api/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.django_db
def test_the_openapi_schema_lists_the_trace_endpoints(anon_client):
    response = anon_client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("/api/traces", "/api/traces/batch", "/api/traces/{trace_id}/review", "/api/health"):
        assert path in paths
    assert anon_client.get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_metrics_show_jobs_by_status_queue_depth_and_ingest(anon_client, write_client, trace_body):
    import json

    from apps.datasets.models import DatasetBuild

    DatasetBuild.objects.create(dataset_id="m-v1", request={})
    body = (json.dumps(trace_body()) + "\n").encode()
    write_client.generic("POST", "/api/datasets/ingest", body, content_type="application/x-ndjson")
    text = anon_client.get("/metrics").content.decode()
    assert 'tunixrt_jobs{kind="dataset_build",status="queued"} 1.0' in text
    assert 'tunixrt_queue_depth{queue="train"}' in text
    assert 'tunixrt_ingest_lines_total{outcome="stored"}' in text
    assert "tunixrt_http_request_duration_seconds_bucket" in text and "tunixrt_cache_fallbacks_total" in text
