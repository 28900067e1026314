"""Input no handler can use is refused where it enters, once, for every endpoint: a NUL (or a lone
surrogate) in a path segment, a query parameter or any JSON string; a chunked body without a length.
And error messages that say what is wrong."""

import json

import pytest


@pytest.mark.django_db
@pytest.mark.parametrize("url", [
    "/api/traces/abc%00def",
    "/api/datasets/x%00-v1",
    "/api/tunix/runs/%00",
    "/api/traces?source=a%00b",
    "/api/traces?tag=%00",
    "/api/datasets/nope-v1/export.jsonl?format=trace%00",
])
def test_a_nul_in_the_path_or_query_is_a_400_naming_where(write_client, url):
    response = write_client.get(url)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "validation_error"
    assert any(key.startswith(("path", "query")) for key in body["detail"])


@pytest.mark.django_db
def test_a_nul_in_a_build_filter_is_a_400_not_a_database_error(curator_client):
    response = curator_client.post("/api/datasets/build", {"dataset_name": "n", "dataset_version": "v1",
                                                           "filters": {"source": "a\u0000b"}}, format="json")
    assert response.status_code == 400
    assert "filters.source" in response.json()["detail"]


@pytest.mark.django_db
def test_a_nul_in_any_json_key_or_value_is_a_400_naming_its_path(trainer):
    from apps.core.testing import key_client

    response = key_client(trainer).post("/api/tunix/run", {"dataset_id": "x", "config": {"model\u0000": 1}},
                                        format="json")
    assert response.status_code == 400
    assert "config.model\u0000" in response.json()["detail"]


@pytest.mark.django_db
def test_a_lone_surrogate_in_json_is_a_400(curator_client):
    raw = b'{"dataset_name": "\\ud800", "dataset_version": "v1"}'
    response = curator_client.generic("POST", "/api/datasets/build", raw, content_type="application/json")
    assert response.status_code == 400
    assert "surrogate" in json.dumps(response.json())


@pytest.mark.django_db
def test_a_chunked_body_without_a_length_is_411(write_client, trace_body):
    response = write_client.generic("POST", "/api/traces", b"", content_type="application/json",
                                    HTTP_TRANSFER_ENCODING="chunked", CONTENT_LENGTH="")
    assert response.status_code == 411
    assert response.json()["error"] == "length_required"


@pytest.mark.django_db
def test_a_missing_field_says_it_is_required(write_client, trace_body):
    body = trace_body()
    del body["prompt"]
    del body["steps"][0]["i"]
    detail = write_client.post("/api/traces", body, format="json").json()["detail"]
    assert detail["prompt"] == ["This field is required."]
    assert detail["steps[0].i"] == ["This field is required."]


@pytest.mark.django_db
def test_a_batch_sent_as_an_object_is_told_to_send_a_list(write_client, trace_body):
    detail = write_client.post("/api/traces/batch", trace_body(), format="json").json()["detail"]
    assert list(detail) == ["traces"] and "list" in detail["traces"][0]


@pytest.mark.django_db
def test_a_batch_of_only_duplicates_is_not_201(write_client, trace_body):
    items = [trace_body(), trace_body()]
    assert write_client.post("/api/traces/batch", items, format="json").status_code == 201
    again = write_client.post("/api/traces/batch", items, format="json")
    assert again.status_code == 200 and again.json()["created"] == 0 and len(again.json()["duplicates"]) == 2


@pytest.mark.django_db
@pytest.mark.parametrize("url", [
    "/api/datasets/../export.jsonl",
    "/api/datasets/..%2F..%2Ftunixrt%2Fsettings.py/export.jsonl",
    "/api/datasets/%2e%2e/export.jsonl",
    "/api/datasets/..",
    "/api/models/versions/..%2F..%2Fdatasets/download",
    "/api/models/versions/../download",
    "/api/datasets/builds/..%2F..",
])
def test_an_id_that_walks_up_the_folders_reaches_nothing(write_client, url):
    response = write_client.get(url)
    assert response.status_code == 404, response.content
    assert response["Content-Type"].startswith("application/json")
