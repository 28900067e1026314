import datetime

import pytest
from django.utils import timezone

from apps.traces.models import Trace
from apps.traces.services import trace_create, trace_review
from apps.traces.testing import make_trace_body


@pytest.fixture
def mixed(owner, curator):
    a = trace_create(data=make_trace_body(meta={"source": "gsm", "category": "math", "tags": ["hard"]}),
                     user=owner)[0]
    b = trace_create(data=make_trace_body(meta={"source": "web", "category": "logic"}), user=owner)[0]
    c = trace_create(data=make_trace_body(meta={"source": "gsm", "category": "logic"}), user=owner)[0]
    trace_review(trace=b, to_status="approved", actor=curator)
    Trace.objects.filter(pk=c.pk).update(created_at=timezone.now() - datetime.timedelta(days=10))
    return a, b, c


def _ids(client, query):
    return {row["id"] for row in client.get(f"/api/traces?{query}").json()["results"]}


@pytest.mark.django_db
def test_filters_by_status_source_category_tag_and_date(write_client, mixed):
    a, b, c = (str(t.id) for t in mixed)
    assert _ids(write_client, "status=approved") == {b}
    assert _ids(write_client, "source=gsm") == {a, c}
    assert _ids(write_client, "category=logic&source=gsm") == {c}
    assert _ids(write_client, "tag=hard") == {a}
    since = (timezone.now() - datetime.timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert _ids(write_client, f"created_after={since}") == {a, b}


@pytest.mark.django_db
def test_the_list_paginates_with_limit_and_offset(write_client, mixed):
    page = write_client.get("/api/traces?limit=2").json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"] and page["previous"] is None
    rest = write_client.get("/api/traces?limit=2&offset=2").json()
    assert len(rest["results"]) == 1 and rest["next"] is None
    seen = {r["id"] for r in page["results"]} | {r["id"] for r in rest["results"]}
    assert seen == {str(t.id) for t in mixed}
