import pytest

from apps.core.testing import key_client
from apps.traces.models import CurationEvent, Trace, TraceScore
from training.trace_schema import trace_content_hash


@pytest.mark.django_db
def test_a_posted_trace_is_stored_with_its_hash_and_readable(write_client, trace_body):
    body = trace_body()
    response = write_client.post("/api/traces", body, format="json")
    assert response.status_code == 201
    data = response.json()
    assert data["status"] == "captured"
    assert data["content_hash"] == trace_content_hash(body)
    assert data["source"] == "test" and data["category"] == "arithmetic"
    fetched = write_client.get(f"/api/traces/{data['id']}").json()
    assert fetched["steps"] == body["steps"] and fetched["meta"] == body["meta"]


@pytest.mark.django_db
def test_trace_version_defaults_to_1_0(write_client, trace_body):
    body = trace_body()
    del body["trace_version"]
    assert write_client.post("/api/traces", body, format="json").json()["trace_version"] == "1.0"


@pytest.mark.django_db
def test_a_duplicate_is_reported_not_stored_twice(write_client, trace_body):
    body = trace_body()
    first = write_client.post("/api/traces", body, format="json").json()
    second = write_client.post("/api/traces", body, format="json")
    assert second.status_code == 409
    assert second.json()["error"] == "duplicate"
    assert second.json()["existing_id"] == first["id"]
    assert Trace.objects.count() == 1


@pytest.mark.django_db
def test_a_new_trace_gets_a_structural_score_in_the_background(
    write_client, trace_body, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        trace_id = write_client.post("/api/traces", trace_body(), format="json").json()["id"]
        assert not TraceScore.objects.filter(trace_id=trace_id).exists()  # scoring waits for the commit
    score = TraceScore.objects.get(trace_id=trace_id)
    assert score.score == 100.0
    assert score.details["arithmetic"]["claims"] == 2


@pytest.mark.django_db
def test_a_batch_stores_all_items_and_reports_duplicates(write_client, trace_body):
    existing = trace_body()
    write_client.post("/api/traces", existing, format="json")
    fresh = [trace_body() for _ in range(5)]
    response = write_client.post("/api/traces/batch", {"traces": [*fresh, existing, fresh[0]]}, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["created"] == 5
    assert [d["index"] for d in data["duplicates"]] == [5, 6]
    assert Trace.objects.count() == 6
    assert CurationEvent.objects.count() == 0


@pytest.mark.django_db
def test_a_batch_may_be_a_bare_list(write_client, trace_body):
    response = write_client.post("/api/traces/batch", [trace_body(), trace_body()], format="json")
    assert response.status_code == 201
    assert response.json()["created"] == 2


@pytest.mark.django_db
def test_a_batch_of_1000_is_accepted(write_client, trace_body):
    response = write_client.post("/api/traces/batch", [trace_body() for _ in range(1000)], format="json")
    assert response.status_code == 201
    assert Trace.objects.count() == 1000


@pytest.mark.django_db
def test_one_bad_item_rejects_the_whole_batch(write_client, trace_body):
    items = [trace_body() for _ in range(4)]
    items[2]["steps"][1]["content"] = ""
    response = write_client.post("/api/traces/batch", {"traces": items}, format="json")
    assert response.status_code == 400
    assert "traces[2].steps[1].content" in response.json()["detail"]
    assert Trace.objects.count() == 0


@pytest.mark.django_db
def test_a_batch_racing_another_writer_reports_its_rows_as_duplicates(write_client, owner, trace_body,
                                                                      monkeypatch):
    from apps.traces import services

    items = [trace_body() for _ in range(3)]
    rival, _ = services.trace_create(data=items[1], user=owner)
    real_stored_ids = services.stored_ids_by_hash
    calls = []

    def stale_then_real(hashes):
        # The first look misses the rival's row, as if it committed just after our check.
        calls.append(1)
        return {} if len(calls) == 1 else real_stored_ids(hashes)

    monkeypatch.setattr(services, "stored_ids_by_hash", stale_then_real)
    response = write_client.post("/api/traces/batch", items, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["created"] == 2
    assert response.json()["duplicates"] == [{"index": 1, "existing_id": str(rival.id)}]
    assert Trace.objects.count() == 3


@pytest.mark.django_db
def test_a_duplicate_of_a_trace_the_caller_cannot_see_hides_its_id(owner, outsider, trace_body):
    body = trace_body()
    key_client(owner).post("/api/traces", body, format="json")
    response = key_client(outsider).post("/api/traces", body, format="json")
    assert response.status_code == 409
    assert response.json()["existing_id"] is None
    batch = key_client(outsider).post("/api/traces/batch", [body], format="json").json()
    assert batch["duplicates"] == [{"index": 0, "existing_id": None}]


@pytest.mark.django_db
def test_a_duplicate_of_a_trace_the_caller_can_see_names_it(owner, curator, trace_body):
    body = trace_body()
    trace_id = key_client(owner).post("/api/traces", body, format="json").json()["id"]
    assert key_client(curator).post("/api/traces", body, format="json").json()["existing_id"] == trace_id
