"""Every dataset, tunix and ungar endpoint gets the inherited checks of apps.core.testing.EndpointContract."""

import json

import pytest

from apps.core.testing import Endpoint, EndpointContract, key_client
from apps.datasets.models import DatasetBuild, DatasetVersion
from apps.datasets.services import dataset_version_build
from apps.datasets.spec import parse_build_request
from apps.traces.models import Trace
from apps.traces.testing import make_trace_body

from .factories import store_traces


def _ndjson(ids):
    return (json.dumps(make_trace_body()) + "\n").encode()


ENDPOINTS = [
    Endpoint("get", "/api/datasets", actor="trainer"),
    Endpoint("get", "/api/datasets/{id}", has_object=True, actor="trainer"),
    Endpoint("get", "/api/datasets/{id}/export.jsonl?format=tunix_sft", has_object=True, actor="trainer"),
    Endpoint("post", "/api/datasets/build", write=True, actor="curator",
             body={"dataset_name": "matrix", "dataset_version": "v2"}),
    Endpoint("get", "/api/datasets/builds/{build}", has_object=True, actor="trainer"),
    Endpoint("post", "/api/datasets/ingest", write=True, actor="owner", body=_ndjson,
             content_type="application/x-ndjson"),
    Endpoint("post", "/api/tunix/sft/export", body=lambda ids: {"dataset_id": ids["id"]}, has_object=True,
             actor="trainer"),
    Endpoint("post", "/api/tunix/sft/manifest", body=lambda ids: {"dataset_id": ids["id"]}, has_object=True,
             actor="trainer"),
    Endpoint("get", "/api/ungar/status", actor="trainer"),
    Endpoint("post", "/api/ungar/high-card-duel/generate", write=True, actor="owner", body={"count": 2}),
    Endpoint("get", "/api/ungar/high-card-duel/export.jsonl?format=messages", actor="trainer"),
]


@pytest.fixture
def known(curator):
    store_traces(3)
    dataset_version_build(spec=parse_build_request({"dataset_name": "matrix", "dataset_version": "v1"}))
    build = DatasetBuild.objects.create(dataset_id="matrix-v9", request={}, requested_by=curator)
    return {"id": "matrix-v1", "build": build.pk}


@pytest.fixture
def unknown(known):
    return {"id": "unknown-v0", "build": "00000000-0000-4000-8000-000000000000"}


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
class TestDatasetEndpoints(EndpointContract):
    # A contributor sees only their own traces, so dataset versions (anyone's traces) are out of reach.
    out_of_scope_actor = "owner"

    def state(self):
        return Trace.objects.count(), DatasetVersion.objects.count(), DatasetBuild.objects.count()


@pytest.mark.django_db
def test_a_contributor_cannot_build(owner, known):
    response = key_client(owner, "write").post("/api/datasets/build", {"dataset_name": "x", "dataset_version": "v1"},
                                               format="json")
    assert response.status_code == 403
    assert "datasets.add_datasetversion" in response.json()["detail"]


@pytest.mark.django_db
def test_a_viewer_reads_but_cannot_build(viewer, known):
    client = key_client(viewer, "write")
    assert client.get("/api/datasets/matrix-v1").status_code == 200
    assert client.post("/api/datasets/build", {"dataset_name": "x", "dataset_version": "v1"},
                       format="json").status_code == 403


@pytest.mark.django_db
def test_a_trainer_may_build(trainer, known):
    response = key_client(trainer, "write").post("/api/datasets/build",
                                                 {"dataset_name": "trainer", "dataset_version": "v1"}, format="json")
    assert response.status_code == 201, response.content
