"""Unknown query parameters are refused like unknown body keys: a misspelt filter is a 400 naming it, never
a page of everything."""

import pytest

from apps.core.testing import key_client


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "misspelt"), [
    ("/api/tunix/evaluations", "eval_sett"),  # the leaderboard
    ("/api/tunix/runs", "stauts"),
    ("/api/traces", "categroy"),
    ("/api/datasets", "name"),
    ("/api/models", "q"),
    ("/api/regression/baselines", "metric"),
    ("/api/tuning/jobs", "status"),
])
def test_a_misspelt_query_parameter_is_a_400_naming_it(viewer, path, misspelt):
    response = key_client(viewer, "read").get(f"{path}?{misspelt}=x")
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "validation_error"
    assert "Unknown query parameter" in response.json()["detail"][misspelt][0]


@pytest.mark.django_db
def test_pagination_and_declared_filters_are_accepted(viewer):
    client = key_client(viewer, "read")
    assert client.get("/api/tunix/evaluations?eval_set=eval-v1&source=all&limit=5&offset=0").status_code == 200
    assert client.get("/api/traces?status=approved&limit=5").status_code == 200
    assert client.get("/api/tunix/runs?format=json").status_code == 200


@pytest.mark.django_db
def test_a_cached_trace_page_still_refuses_a_made_up_parameter(owner):
    client = key_client(owner, "read")
    assert client.get("/api/traces").status_code == 200  # cached now
    assert client.get("/api/traces?bogus=1").status_code == 400
