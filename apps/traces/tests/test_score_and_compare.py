import pytest

from apps.traces.scoring import structural_score
from apps.traces.testing import make_trace_body


def test_a_false_arithmetic_claim_costs_points():
    good = make_trace_body()
    bad = make_trace_body()
    bad["steps"][1]["content"] = "3 + 7 = 11"
    good_score, _ = structural_score(good)
    bad_score, details = structural_score(bad)
    assert bad_score < good_score
    assert details["arithmetic"]["false"]


def test_a_single_step_trace_scores_lower_than_three_steps():
    short = make_trace_body()
    short["steps"] = short["steps"][1:2]
    assert structural_score(short)[0] < structural_score(make_trace_body())[0]


@pytest.mark.django_db
def test_score_endpoint_stores_a_score_row(write_client, trace_body):
    trace_id = write_client.post("/api/traces", trace_body(), format="json").json()["id"]
    response = write_client.post(f"/api/traces/{trace_id}/score")
    assert response.status_code == 201
    assert 0 <= response.json()["score"] <= 100
    assert response.json()["details"]["step_count"]["value"] == 3


@pytest.mark.django_db
def test_compare_shows_both_sides_and_the_differences(write_client, trace_body):
    base = write_client.post("/api/traces", trace_body(), format="json").json()["id"]
    other_body = trace_body()
    other_body["steps"] = other_body["steps"][:2]
    other = write_client.post("/api/traces", other_body, format="json").json()["id"]
    data = write_client.get(f"/api/traces/compare?base={base}&other={other}").json()
    assert data["base"]["id"] == base and data["other"]["id"] == other
    assert data["diff"]["step_count_delta"] == -1
    assert data["diff"]["same_prompt"] is False


@pytest.mark.django_db
def test_the_scoring_task_delivered_twice_stores_one_score(owner):
    from apps.traces.models import TraceScore
    from apps.traces.services import trace_create
    from apps.traces.tasks import trace_scores_compute_task

    trace, _ = trace_create(data=make_trace_body(), user=owner)
    trace_scores_compute_task.delay([str(trace.id)])
    trace_scores_compute_task.delay([str(trace.id)])
    assert TraceScore.objects.filter(trace=trace).count() == 1


@pytest.mark.django_db
def test_scoring_again_updates_the_one_row(write_client, trace_body):
    trace_id = write_client.post("/api/traces", trace_body(), format="json").json()["id"]
    first = write_client.post(f"/api/traces/{trace_id}/score")
    again = write_client.post(f"/api/traces/{trace_id}/score")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
