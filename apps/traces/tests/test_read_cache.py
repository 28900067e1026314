"""Cached trace reads and API keys stay exact: every write, revocation and permission change shows
at once, visibility never leaks between callers, and a repeated read costs no query."""

import pytest
from django.contrib.auth.models import Group
from django.core.checks import Warning as CheckWarning

from apps.core.checks import check_read_cache_is_shared
from apps.core.testing import key_client
from apps.traces import services
from apps.traces.models import Trace
from apps.traces.testing import make_trace_body


@pytest.fixture(autouse=True)
def caching_on(settings):
    settings.READ_CACHE_SECONDS = 300
    settings.API_KEY_CACHE_SECONDS = 60


def list_ids(client, query=""):
    response = client.get(f"/api/traces{query}")
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def post_trace(client, **overrides):
    response = client.post("/api/traces", make_trace_body(**overrides), format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_a_repeated_read_runs_no_query(write_client, django_assert_num_queries):
    trace_id = post_trace(write_client)
    list_ids(write_client)
    write_client.get(f"/api/traces/{trace_id}")
    with django_assert_num_queries(0):
        assert list_ids(write_client) == [trace_id]
        assert write_client.get(f"/api/traces/{trace_id}").json()["id"] == trace_id


def test_single_and_batch_captures_show_up_at_once(write_client):
    first = post_trace(write_client)
    assert list_ids(write_client) == [first]
    second = post_trace(write_client)
    assert list_ids(write_client) == [second, first]
    response = write_client.post("/api/traces/batch", [make_trace_body(), make_trace_body()], format="json")
    assert response.status_code == 201
    ids = list_ids(write_client)
    assert len(ids) == 4 and set(response.json()["ids"]) <= set(ids)
    assert write_client.get("/api/traces?limit=1").json()["count"] == 4


def test_review_tag_and_edit_show_up_at_once(curator_client, curator):
    trace_id = post_trace(curator_client)
    assert curator_client.get(f"/api/traces/{trace_id}").json()["status"] == "captured"
    assert list_ids(curator_client, "?status=approved") == []

    response = curator_client.post(f"/api/traces/{trace_id}/review", {"status": "approved"}, format="json")
    assert response.status_code == 200
    assert curator_client.get(f"/api/traces/{trace_id}").json()["status"] == "approved"
    assert list_ids(curator_client, "?status=approved") == [trace_id]

    trace = Trace.objects.get(pk=trace_id)
    services.trace_tag(traces=[trace], tags=["checked"], actor=curator)
    assert "checked" in curator_client.get(f"/api/traces/{trace_id}").json()["tags"]

    services.trace_edit(trace=trace, data=make_trace_body(final_answer="42"), actor=curator)
    assert curator_client.get(f"/api/traces/{trace_id}").json()["final_answer"] == "42"


def test_visibility_never_leaks_between_callers(owner, outsider, curator):
    owner_client, outsider_client, curator_client = key_client(owner), key_client(outsider), key_client(curator)
    mine = post_trace(owner_client)
    assert list_ids(owner_client) == [mine]
    assert list_ids(curator_client) == [mine]
    assert list_ids(outsider_client) == []
    assert owner_client.get(f"/api/traces/{mine}").status_code == 200
    assert outsider_client.get(f"/api/traces/{mine}").status_code == 404


def test_a_revoked_key_stops_at_once(owner):
    from apps.core.models import ApiKey
    from apps.core.services import api_key_revoke

    client = key_client(owner, "read")
    assert client.get("/api/traces").status_code == 200  # now cached
    api_key_revoke(key=ApiKey.objects.get(user=owner))
    assert client.get("/api/traces").status_code == 401


def test_a_revocation_racing_a_key_lookup_still_stops_the_key(owner, monkeypatch):
    """A request that read the key just before it was revoked must not cache the stale copy."""
    from apps.core import selectors
    from apps.core.models import ApiKey
    from apps.core.services import api_key_revoke

    client = key_client(owner, "read")
    real_load = selectors._load_api_key

    def load_then_revoked_meanwhile(key_id):
        key = real_load(key_id)
        api_key_revoke(key=ApiKey.objects.get(pk=key.pk))  # lands between our read and our cache write
        return key

    monkeypatch.setattr(selectors, "_load_api_key", load_then_revoked_meanwhile)
    assert client.get("/api/traces").status_code == 200  # it read the key before the revocation
    monkeypatch.setattr(selectors, "_load_api_key", real_load)
    assert client.get("/api/traces").status_code == 401


def test_deactivating_the_user_stops_their_keys_at_once(owner):
    client = key_client(owner, "read")
    assert client.get("/api/traces").status_code == 200
    owner.is_active = False
    owner.save()
    assert client.get("/api/traces").status_code == 401


def test_losing_a_group_changes_what_the_key_sees_at_once(owner, curator):
    curator_client = key_client(curator)
    post_trace(key_client(owner))
    assert len(list_ids(curator_client)) == 1
    curator.groups.remove(Group.objects.get(name="curator"))
    assert list_ids(curator_client) == []
    Group.objects.get(name="curator").user_set.add(curator)  # the reverse side of the relation too
    assert len(list_ids(curator_client)) == 1


def test_bad_filters_are_refused_not_cached(write_client):
    assert write_client.get("/api/traces?status=nonsense").status_code == 400
    assert write_client.get("/api/traces?status=nonsense").status_code == 400


def test_caching_without_a_shared_cache_is_flagged(settings):
    settings.CACHE_URL = ""
    warnings = check_read_cache_is_shared(None)
    assert [w.id for w in warnings] == ["tunixrt.W002"] and isinstance(warnings[0], CheckWarning)
    settings.READ_CACHE_SECONDS = settings.API_KEY_CACHE_SECONDS = 0
    assert check_read_cache_is_shared(None) == []
