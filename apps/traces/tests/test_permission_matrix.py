"""Every trace endpoint gets the same checks: anonymous 401, read key on a write 403,
unknown or out-of-scope object 404, and the right key succeeds."""

from dataclasses import dataclass

import pytest

from apps.traces.models import Trace
from apps.traces.services import trace_create
from conftest import key_client, make_trace_body


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # {id} / {other} are filled with trace ids
    body: object = None
    write: bool = False
    has_object: bool = False
    actor: str = "owner"  # persona whose write key must succeed

    def call(self, client, trace_id, other_id):
        url = self.path.format(id=trace_id, other=other_id)
        body = self.body() if callable(self.body) else self.body
        return getattr(client, self.method)(url, body, format="json") if body is not None else \
            getattr(client, self.method)(url)


ENDPOINTS = [
    Endpoint("get", "/api/traces"),
    Endpoint("post", "/api/traces", body=make_trace_body, write=True),
    Endpoint("post", "/api/traces/batch", body=lambda: {"traces": [make_trace_body()]}, write=True),
    Endpoint("get", "/api/traces/{id}", has_object=True),
    Endpoint("get", "/api/traces/compare?base={id}&other={other}", has_object=True),
    Endpoint("post", "/api/traces/{id}/score", write=True, has_object=True),
    Endpoint("post", "/api/traces/{id}/review", body={"status": "approved"}, write=True, has_object=True,
             actor="curator"),
]
IDS = [f"{e.method.upper()} {e.path}" for e in ENDPOINTS]


@pytest.fixture
def owned_traces(owner):
    first, _ = trace_create(data=make_trace_body(), user=owner)
    second, _ = trace_create(data=make_trace_body(), user=owner)
    return first, second


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
class TestEndpointContract:
    def test_anonymous_is_401(self, endpoint, anon_client, owned_traces):
        response = endpoint.call(anon_client, owned_traces[0].id, owned_traces[1].id)
        assert response.status_code == 401
        assert response.json()["error"] in ("not_authenticated", "authentication_failed")

    def test_a_bad_key_is_401(self, endpoint, owned_traces):
        from rest_framework.test import APIClient

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Bearer trt_0000_not-a-real-secret")
        assert endpoint.call(client, owned_traces[0].id, owned_traces[1].id).status_code == 401

    def test_read_key_on_a_write_is_403(self, endpoint, owned_traces, request):
        if not endpoint.write:
            pytest.skip("read endpoint")
        client = key_client(request.getfixturevalue(endpoint.actor), "read")
        before = Trace.objects.count()
        response = endpoint.call(client, owned_traces[0].id, owned_traces[1].id)
        assert response.status_code == 403
        assert response.json()["error"] == "permission_denied"
        assert Trace.objects.count() == before

    def test_unknown_object_is_404(self, endpoint, owned_traces, request):
        if not endpoint.has_object:
            pytest.skip("no object in path")
        client = key_client(request.getfixturevalue(endpoint.actor), "write")
        unknown = "00000000-0000-4000-8000-000000000000"
        assert endpoint.call(client, unknown, unknown).status_code == 404
        assert endpoint.call(client, "not-a-uuid", owned_traces[1].id).status_code in (400, 404)

    def test_out_of_scope_object_is_404(self, endpoint, owned_traces, outsider):
        if not endpoint.has_object or endpoint.actor != "owner":
            pytest.skip("only personas with a limited view have out-of-scope objects")
        response = endpoint.call(key_client(outsider, "write"), owned_traces[0].id, owned_traces[1].id)
        assert response.status_code == 404

    def test_the_right_write_key_succeeds(self, endpoint, owned_traces, request):
        client = key_client(request.getfixturevalue(endpoint.actor), "write")
        response = endpoint.call(client, owned_traces[0].id, owned_traces[1].id)
        assert 200 <= response.status_code < 300, response.content


@pytest.mark.django_db
def test_a_contributor_cannot_review(owner, owned_traces):
    response = key_client(owner, "write").post(f"/api/traces/{owned_traces[0].id}/review",
                                               {"status": "approved"}, format="json")
    assert response.status_code == 403
    assert "review_trace" in response.json()["detail"]


@pytest.mark.django_db
def test_a_list_shows_a_contributor_only_their_own_traces(owner, outsider, owned_traces):
    trace_create(data=make_trace_body(), user=outsider)
    ids = {row["id"] for row in key_client(owner, "read").get("/api/traces").json()["results"]}
    assert ids == {str(t.id) for t in owned_traces}
