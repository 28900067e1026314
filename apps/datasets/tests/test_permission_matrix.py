"""Every dataset, tunix and ungar endpoint gets the same checks: anonymous 401, a bad key 401, read key on a
write 403, unknown or out-of-scope object 404, and the right key succeeds."""

import json
from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from apps.datasets.models import DatasetVersion
from apps.datasets.services import dataset_version_build
from apps.datasets.spec import parse_build_request
from apps.traces.models import Trace
from conftest import key_client, make_trace_body

from .factories import store_traces

KNOWN, UNKNOWN = "matrix-v1", "unknown-v0"


def _ndjson():
    return (json.dumps(make_trace_body()) + "\n").encode()


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # {id} is filled with a dataset id
    body: object = None  # dict, or a callable taking the dataset id
    write: bool = False  # needs a write-scoped key
    has_object: bool = False
    actor: str = "trainer"  # persona whose key must succeed
    content_type: str | None = None

    def call(self, client, dataset_id):
        url = self.path.format(id=dataset_id)
        body = self.body(dataset_id) if callable(self.body) else self.body
        if self.content_type:
            return client.generic(self.method.upper(), url, body, content_type=self.content_type)
        if body is None:
            return getattr(client, self.method)(url)
        return getattr(client, self.method)(url, body, format="json")


ENDPOINTS = [
    Endpoint("get", "/api/datasets"),
    Endpoint("get", "/api/datasets/{id}", has_object=True),
    Endpoint("get", "/api/datasets/{id}/export.jsonl?format=tunix_sft", has_object=True),
    Endpoint("post", "/api/datasets/build", write=True, actor="curator",
             body={"dataset_name": "matrix", "dataset_version": "v2"}),
    Endpoint("post", "/api/datasets/ingest", write=True, actor="owner", body=lambda _: _ndjson(),
             content_type="application/x-ndjson"),
    Endpoint("post", "/api/tunix/sft/export", body=lambda i: {"dataset_id": i}, has_object=True),
    Endpoint("post", "/api/tunix/sft/manifest", body=lambda i: {"dataset_id": i}, has_object=True),
    Endpoint("get", "/api/ungar/status"),
    Endpoint("post", "/api/ungar/high-card-duel/generate", write=True, actor="owner", body={"count": 2}),
    Endpoint("get", "/api/ungar/high-card-duel/export.jsonl?format=messages"),
]
IDS = [f"{e.method.upper()} {e.path}" for e in ENDPOINTS]


@pytest.fixture
def dataset(db):
    store_traces(3)
    version, _ = dataset_version_build(spec=parse_build_request({"dataset_name": "matrix", "dataset_version": "v1"}))
    return version


def _counts():
    return Trace.objects.count(), DatasetVersion.objects.count()


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
class TestEndpointContract:
    def test_anonymous_is_401(self, endpoint, anon_client, dataset):
        response = endpoint.call(anon_client, KNOWN)
        assert response.status_code == 401
        assert response.json()["error"] in ("not_authenticated", "authentication_failed")

    def test_a_bad_key_is_401(self, endpoint, dataset):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Bearer trt_0000_not-a-real-secret")
        assert endpoint.call(client, KNOWN).status_code == 401

    def test_read_key_on_a_write_is_403(self, endpoint, dataset, request):
        if not endpoint.write:
            pytest.skip("read endpoint")
        before = _counts()
        response = endpoint.call(key_client(request.getfixturevalue(endpoint.actor), "read"), KNOWN)
        assert response.status_code == 403
        assert response.json()["error"] == "permission_denied"
        assert _counts() == before

    def test_unknown_object_is_404(self, endpoint, dataset, request):
        if not endpoint.has_object:
            pytest.skip("no object in the request")
        response = endpoint.call(key_client(request.getfixturevalue(endpoint.actor), "write"), UNKNOWN)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"

    def test_out_of_scope_object_is_404(self, endpoint, dataset, owner):
        if not endpoint.has_object:
            pytest.skip("no object in the request")
        # A contributor sees only their own traces, so dataset versions (anyone's traces) are out of reach.
        assert endpoint.call(key_client(owner, "write"), KNOWN).status_code == 404

    def test_the_right_key_succeeds(self, endpoint, dataset, request):
        scope = "write" if endpoint.write else "read"
        response = endpoint.call(key_client(request.getfixturevalue(endpoint.actor), scope), KNOWN)
        assert 200 <= response.status_code < 300, response.content


@pytest.mark.django_db
def test_a_contributor_cannot_build(owner, dataset):
    response = key_client(owner, "write").post("/api/datasets/build", {"dataset_name": "x", "dataset_version": "v1"},
                                               format="json")
    assert response.status_code == 403
    assert "datasets.add_datasetversion" in response.json()["detail"]


@pytest.mark.django_db
def test_a_viewer_reads_but_cannot_build(viewer, dataset):
    client = key_client(viewer, "write")
    assert client.get(f"/api/datasets/{KNOWN}").status_code == 200
    assert client.post("/api/datasets/build", {"dataset_name": "x", "dataset_version": "v1"},
                       format="json").status_code == 403


@pytest.mark.django_db
def test_a_trainer_may_build(trainer, dataset):
    response = key_client(trainer, "write").post("/api/datasets/build",
                                                 {"dataset_name": "trainer", "dataset_version": "v1"}, format="json")
    assert response.status_code == 201, response.content
