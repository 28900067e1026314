"""Security by default: production settings pass `check --deploy` once the HTTPS settings the README
names are set; API keys are stored hashed; session writes need the CSRF token."""

import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings
from rest_framework.test import APIClient


def test_check_deploy_passes_with_the_production_settings():
    env = {k: v for k, v in os.environ.items() if k not in ("TUNIXRT_DEMO", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env.update(SECRET_KEY=secrets.token_urlsafe(50), SECURE_SSL_REDIRECT="1", SECURE_HSTS_SECONDS="31536000",
               SECURE_HSTS_INCLUDE_SUBDOMAINS="1", SECURE_HSTS_PRELOAD="1")
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=settings.BASE_DIR, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.django_db
def test_api_keys_are_stored_as_an_hmac_of_the_secret(owner):
    from apps.core.models import ApiKey
    from apps.core.services import api_key_create

    key, token = api_key_create(user=owner, name="x")
    secret = token.rsplit("_", 1)[-1]
    stored = ApiKey.objects.get(pk=key.pk)
    assert secret not in stored.secret_hash and len(stored.secret_hash) == 64


@pytest.mark.django_db
def test_a_session_write_without_the_csrf_token_is_refused(owner, trace_body):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post("/api/traces", trace_body(), format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


@pytest.mark.django_db
def test_key_authenticated_writes_are_rate_limited_with_a_429(write_client, trace_body, monkeypatch):
    from apps.core.throttling import ApiKeyWriteThrottle

    monkeypatch.setattr(ApiKeyWriteThrottle, "THROTTLE_RATES", {"key_writes": "3/min"})
    statuses = [write_client.post("/api/traces", trace_body(), format="json").status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 429]
    response = write_client.post("/api/traces", trace_body(), format="json")
    assert response.json()["error"] == "throttled" and int(response["Retry-After"]) > 0
    assert write_client.get("/api/traces").status_code == 200  # reads are not throttled
