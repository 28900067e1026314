import pytest
from django.contrib.auth.models import Group, User
from django.contrib.messages import get_messages
from rest_framework.test import APIClient

from apps.core.models import ApiKey
from apps.traces.models import CurationEvent, Trace
from apps.traces.services import trace_create
from apps.traces.testing import make_trace_body

CHANGELIST = "/admin/traces/trace/"


@pytest.fixture
def traces(owner):
    return [trace_create(data=make_trace_body(), user=owner)[0] for _ in range(3)]


@pytest.fixture
def curator_admin(client, curator):
    client.force_login(curator)
    return client


def _action(client, action, traces, **extra):
    data = {"action": action, "_selected_action": [str(t.pk) for t in traces], **extra}
    return client.post(CHANGELIST, data)


@pytest.mark.django_db
def test_the_changelist_filters_and_shows_scores(curator_admin, traces):
    response = curator_admin.get(CHANGELIST + "?status__exact=captured&source=test")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Tom has" in body and "By source" in body.replace("By  source", "By source")


@pytest.mark.django_db
def test_the_change_page_renders_the_steps(curator_admin, traces):
    body = curator_admin.get(f"{CHANGELIST}{traces[0].pk}/change/").content.decode()
    assert "<i>compute</i>" in body and "Check:" in body


@pytest.mark.django_db
def test_bulk_approve_asks_for_a_reason_then_applies_it(curator_admin, traces):
    first = _action(curator_admin, "approve", traces)
    assert first.status_code == 200 and b"Apply" in first.content
    assert Trace.objects.filter(status="approved").count() == 0
    _action(curator_admin, "approve", traces, apply="1", reason="reviewed by hand")
    assert Trace.objects.filter(status="approved").count() == 3
    assert set(CurationEvent.objects.values_list("reason", flat=True)) == {"reviewed by hand"}


@pytest.mark.django_db
def test_bulk_tag_adds_tags(curator_admin, traces):
    _action(curator_admin, "add_tags", traces[:2], apply="1", tags="gold, math", reason="")
    assert [sorted(t.tags) for t in Trace.objects.filter(pk__in=[traces[0].pk, traces[1].pk])] == \
        [["gold", "math", "unit"]] * 2


@pytest.mark.django_db
def test_compare_shows_two_traces_side_by_side(curator_admin, traces):
    body = _action(curator_admin, "compare_two", traces[:2]).content.decode()
    assert str(traces[0].pk) in body and str(traces[1].pk) in body and "score delta" in body


@pytest.mark.django_db
def test_a_viewer_is_not_offered_review_actions(client, traces):
    viewer = User.objects.create_user("viewer", password="x", is_staff=True)
    viewer.groups.add(Group.objects.get(name="viewer"))
    client.force_login(viewer)
    body = client.get(CHANGELIST).content.decode()
    assert "Tom has" in body
    assert 'value="approve"' not in body


@pytest.mark.django_db
def test_an_admin_created_key_is_shown_once_and_works(client, superuser, owner):
    client.force_login(superuser)
    response = client.post("/admin/core/apikey/add/",
                           {"name": "notebook", "user": owner.pk, "scope": "read"}, follow=True)
    shown = [str(m) for m in get_messages(response.wsgi_request)] or [response.content.decode()]
    token = next(word for text in shown for word in text.split() if word.startswith("trt_"))
    token = token.split("<")[0]
    key = ApiKey.objects.get(name="notebook")
    assert token.startswith(key.prefix) and token.split("_", 2)[2] not in key.secret_hash
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/api/traces").status_code == 200
