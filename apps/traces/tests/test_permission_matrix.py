"""Every trace endpoint gets the inherited checks of apps.core.testing.EndpointContract."""

import pytest

from apps.core.testing import Endpoint, EndpointContract, key_client
from apps.traces.models import Trace
from apps.traces.services import trace_create
from apps.traces.testing import make_trace_body

ENDPOINTS = [
    Endpoint("get", "/api/traces"),
    Endpoint("post", "/api/traces", body=lambda ids: make_trace_body(), write=True),
    Endpoint("post", "/api/traces/batch", body=lambda ids: {"traces": [make_trace_body()]}, write=True),
    Endpoint("get", "/api/traces/{id}", has_object=True),
    Endpoint("get", "/api/traces/compare?base={id}&other={other}", has_object=True),
    Endpoint("post", "/api/traces/{id}/score", write=True, has_object=True),
    # A contributor may not review at all: 403 before any object is looked up.
    Endpoint("post", "/api/traces/{id}/review", body={"status": "approved"}, write=True, has_object=True,
             actor="curator", out_of_scope=False),
]
UNKNOWN = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def known(owner):
    first, _ = trace_create(data=make_trace_body(), user=owner)
    second, _ = trace_create(data=make_trace_body(), user=owner)
    return {"id": first.id, "other": second.id}


@pytest.fixture
def unknown(known):
    return {"id": UNKNOWN, "other": UNKNOWN}


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
class TestTraceEndpoints(EndpointContract):
    def state(self):
        return Trace.objects.count()

    def test_a_malformed_id_in_the_path_is_404_and_in_the_query_400(self, endpoint, known, request):
        if not endpoint.has_object:
            pytest.skip("no object in the path")
        client = key_client(request.getfixturevalue(endpoint.actor), "write")
        # A path id names an object (a malformed one names none); a query parameter is validated input.
        expected = 400 if "?" in endpoint.path else 404
        assert endpoint.call(client, {"id": "not-a-uuid", "other": known["other"]}).status_code == expected


@pytest.mark.django_db
def test_a_contributor_cannot_review(owner, known):
    response = key_client(owner, "write").post(f"/api/traces/{known['id']}/review", {"status": "approved"},
                                               format="json")
    assert response.status_code == 403
    assert "review_trace" in response.json()["detail"]


@pytest.mark.django_db
def test_a_list_shows_a_contributor_only_their_own_traces(owner, outsider, known):
    trace_create(data=make_trace_body(), user=outsider)
    ids = {row["id"] for row in key_client(owner, "read").get("/api/traces").json()["results"]}
    assert ids == {str(known["id"]), str(known["other"])}
