import datetime
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core.models import ApiKey
from apps.core.services import api_key_create, api_key_revoke


def _client(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.mark.django_db
def test_the_secret_is_stored_only_as_a_hash(owner):
    key, token = api_key_create(user=owner, name="ci", scope="write")
    secret = token.split("_", 2)[2]
    stored = ApiKey.objects.get(pk=key.pk)
    assert token.startswith(f"trt_{key.key_id}_")
    assert secret not in stored.secret_hash and len(stored.secret_hash) == 64


@pytest.mark.django_db
def test_a_valid_key_authenticates_and_records_last_use(owner):
    key, token = api_key_create(user=owner, name="ci")
    assert _client(token).get("/api/traces").status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # wrong secret
    lambda t: t.replace("trt_", "xyz_"),                 # wrong prefix
    lambda t: "trt_" + t.split("_")[1],                  # no secret
])
def test_a_tampered_key_is_401(owner, mangle):
    _, token = api_key_create(user=owner, name="ci")
    response = _client(mangle(token)).get("/api/traces")
    assert response.status_code == 401
    assert response.json()["error"] == "authentication_failed"


@pytest.mark.django_db
def test_expired_and_revoked_keys_are_401(owner):
    expired, expired_token = api_key_create(user=owner, name="old",
                                            expires_at=timezone.now() - datetime.timedelta(seconds=1))
    revoked, revoked_token = api_key_create(user=owner, name="gone")
    api_key_revoke(key=revoked)
    assert _client(expired_token).get("/api/traces").status_code == 401
    assert _client(revoked_token).get("/api/traces").status_code == 401


@pytest.mark.django_db
def test_a_key_of_a_deactivated_user_is_401(owner):
    _, token = api_key_create(user=owner, name="ci")
    owner.is_active = False
    owner.save()
    assert _client(token).get("/api/traces").status_code == 401


@pytest.mark.django_db
def test_the_command_prints_a_working_key_once(owner):
    out = io.StringIO()
    call_command("create_api_key", user="owner", name="notebook", scope="write", expires_days=30, stdout=out)
    token = out.getvalue().strip()
    key = ApiKey.objects.get(name="notebook")
    assert key.scope == "write" and key.expires_at > timezone.now()
    assert _client(token).get("/api/traces").status_code == 200


@pytest.mark.django_db
def test_the_command_rejects_an_unknown_user():
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        call_command("create_api_key", user="ghost", name="x")


@pytest.mark.django_db
def test_session_auth_works_but_enforces_csrf(curator, trace_body):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(curator)
    assert client.get("/api/traces").status_code == 200
    response = client.post("/api/traces", trace_body(), format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
