import pytest

from apps.core.errors import Conflict
from apps.traces.models import CurationEvent, Trace
from apps.traces.services import trace_create, trace_edit, trace_review, trace_tag
from apps.traces.testing import make_trace_body


@pytest.fixture
def trace(owner):
    return trace_create(data=make_trace_body(), user=owner)[0]


@pytest.mark.django_db
def test_review_moves_the_status_and_writes_an_audit_row(curator_client, trace):
    response = curator_client.post(f"/api/traces/{trace.id}/review",
                                   {"status": "approved", "reason": "steps check out"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "approved"
    event = CurationEvent.objects.get(trace=trace)
    assert (event.from_status, event.to_status, event.reason) == ("captured", "approved", "steps check out")
    assert event.actor.username == "curator" and "via key" in event.actor_label


@pytest.mark.django_db
def test_an_illegal_transition_is_a_conflict(curator_client, trace):
    curator_client.post(f"/api/traces/{trace.id}/review", {"status": "approved"}, format="json")
    response = curator_client.post(f"/api/traces/{trace.id}/review", {"status": "approved"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"] == "invalid_transition"
    assert CurationEvent.objects.count() == 1


@pytest.mark.django_db
def test_review_to_captured_is_not_offered(curator_client, trace):
    response = curator_client.post(f"/api/traces/{trace.id}/review", {"status": "captured"}, format="json")
    assert response.status_code == 400
    assert "status" in response.json()["detail"]


@pytest.mark.django_db
def test_a_stale_review_loses_the_race(trace, curator):
    stale = Trace.objects.get(pk=trace.pk)
    trace_review(trace=trace, to_status="rejected", actor=curator)
    with pytest.raises(Conflict):
        trace_review(trace=stale, to_status="needs_review", actor=curator)  # stale still thinks "captured"
    assert Trace.objects.get(pk=trace.pk).status == "rejected"


@pytest.mark.django_db
def test_an_edit_keeps_the_original_in_the_audit_log(trace, curator):
    original = trace.as_trace_json()
    edited = {**original, "final_answer": "999"}
    trace_edit(trace=trace, data=edited, reason="typo", actor=curator)
    trace.refresh_from_db()
    assert trace.final_answer == "999"
    event = CurationEvent.objects.get(trace=trace, action="edit")
    assert event.snapshot == original and event.reason == "typo"


@pytest.mark.django_db
def test_tags_are_added_once_and_audited(trace, curator):
    assert trace_tag(traces=[trace], tags=["gold", " gold ", "math"], actor=curator) == 1
    assert trace_tag(traces=[trace], tags=["gold"], actor=curator) == 0
    trace.refresh_from_db()
    assert trace.tags == ["unit", "gold", "math"]
    assert CurationEvent.objects.get(trace=trace).tags_added == ["gold", "math"]


@pytest.mark.django_db
def test_a_review_moves_updated_at(trace, curator):
    before = Trace.objects.get(pk=trace.pk).updated_at
    reviewed = trace_review(trace=trace, to_status="approved", actor=curator)
    stored = Trace.objects.get(pk=trace.pk).updated_at
    assert stored > before
    assert reviewed.updated_at == stored


@pytest.mark.django_db
def test_an_edit_with_a_stale_copy_does_not_revert_a_review(trace, curator):
    stale = Trace.objects.get(pk=trace.pk)  # loaded while still "captured"
    trace_review(trace=trace, to_status="approved", reason="checked", actor=curator)
    trace_edit(trace=stale, data={**stale.as_trace_json(), "final_answer": "42"}, reason="fix", actor=curator)
    stored = Trace.objects.get(pk=trace.pk)
    assert (stored.status, stored.final_answer) == ("approved", "42")
    edit = CurationEvent.objects.get(trace=trace, action="edit")
    assert (edit.from_status, edit.to_status) == ("approved", "approved")


@pytest.mark.django_db
def test_an_edit_racing_a_capture_of_the_same_content_is_a_conflict(trace, owner, curator, monkeypatch):
    from django.db.models import QuerySet

    body = make_trace_body()
    trace_create(data=body, user=owner)
    # The edit's duplicate pre-check misses the other capture, as if it committed just after the check.
    real_exists, calls = QuerySet.exists, []
    monkeypatch.setattr(QuerySet, "exists", lambda qs: False if not calls.append(1) and len(calls) == 1
                        else real_exists(qs))
    with pytest.raises(Conflict) as raised:
        trace_edit(trace=trace, data=body, reason="race", actor=curator)
    assert raised.value.code == "duplicate"
    assert not CurationEvent.objects.filter(trace=trace, action="edit").exists()


@pytest.mark.django_db
def test_an_edit_refreshes_tags_from_meta_and_keeps_curated_tags(trace, curator):
    trace_tag(traces=[trace], tags=["gold"], actor=curator)
    trace.refresh_from_db()
    edited = trace.as_trace_json()
    edited["meta"] = {**edited["meta"], "tags": ["hard"]}
    trace_edit(trace=trace, data=edited, actor=curator)
    assert Trace.objects.get(pk=trace.pk).tags == ["hard", "gold"]  # "unit" came from the old meta
