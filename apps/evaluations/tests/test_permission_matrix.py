"""Every evaluation and regression endpoint gets the inherited checks of EndpointContract: trainers
evaluate, set baselines and check; viewers read; contributors see no evaluations and no baselines but
their own; a contractor (write permissions, no view-all) gets 404 for the runs, evaluations and
baselines of others that a path or body names."""

import pytest

from apps.core.testing import Endpoint, EndpointContract, key_client
from apps.evaluations.models import Evaluation, RegressionBaseline, RegressionCheck
from apps.evaluations.regression import baseline_create
from apps.runs.models import TrainingRun

from .factories import scored_evaluation

ENDPOINTS = [
    Endpoint("post", "/api/tunix/runs/{run}/evaluate", write=True, has_object=True, actor="trainer",
             body={"eval_set": "small-v1"}, outsider="contractor"),
    Endpoint("get", "/api/tunix/runs/{run}/evaluation", has_object=True, actor="viewer"),
    Endpoint("get", "/api/tunix/evaluations", actor="viewer"),
    Endpoint("get", "/api/evaluations/{evaluation}", has_object=True, actor="viewer"),
    Endpoint("get", "/api/evaluations/{evaluation}/predictions", has_object=True, actor="viewer"),
    # Contributors may not cancel evaluations: 403 before the evaluation is looked up.
    Endpoint("post", "/api/evaluations/{queued}/cancel", write=True, has_object=True, actor="trainer",
             out_of_scope=False),
    Endpoint("get", "/api/regression/baselines", actor="viewer"),
    Endpoint("post", "/api/regression/baselines", write=True, actor="trainer", has_object=True,
             body=lambda ids: {"name": "another", "evaluation_id": str(ids["evaluation"])}, outsider="contractor"),
    Endpoint("post", "/api/regression/check", write=True, actor="trainer", has_object=True,
             body=lambda ids: {"baseline": ids["baseline"], "evaluation_id": str(ids["evaluation"])},
             outsider="contractor"),
    Endpoint("post", "/api/regression/check", write=True, actor="trainer", has_object=True,
             body=lambda ids: {"baseline": ids["baseline"], "run_id": str(ids["run"])}, outsider="contractor"),
]


@pytest.fixture
def known(completed_run, small_set, django_capture_on_commit_callbacks):
    evaluation = scored_evaluation(completed_run, small_set, [True, False, True, False, True, False])
    baseline_create(data={"name": "gate", "evaluation_id": str(evaluation.pk)})
    queued = Evaluation.objects.create(run=completed_run, eval_set=small_set, eval_set_hash=small_set.content_hash,
                                       judges=evaluation.judges, judge_key=evaluation.judge_key)
    return {"run": completed_run.pk, "evaluation": evaluation.pk, "baseline": "gate", "queued": queued.pk}


@pytest.fixture
def unknown(known):
    missing = "00000000-0000-4000-8000-000000000000"
    return {"run": missing, "evaluation": missing, "baseline": "no-such-baseline", "queued": missing}


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
class TestEvaluationEndpoints(EndpointContract):
    out_of_scope_actor = "owner"

    def state(self):
        return Evaluation.objects.count(), RegressionBaseline.objects.count(), RegressionCheck.objects.count()


@pytest.mark.django_db
def test_a_contributor_sees_no_baselines_and_a_contractor_only_their_own(owner, contractor, trainer, known,
                                                                         completed_run, small_set):
    assert key_client(owner, "read").get("/api/regression/baselines").json()["count"] == 0
    assert key_client(trainer, "read").get("/api/regression/baselines").json()["count"] == 1
    own_run = TrainingRun.objects.get(pk=completed_run.pk)
    own_run.pk = own_run.id = None
    own_run.created_by = contractor
    own_run.save()
    own = scored_evaluation(own_run, small_set, [True] * 6)
    Evaluation.objects.filter(pk=own.pk).update(created_by=contractor)
    client = key_client(contractor)
    created = client.post("/api/regression/baselines", {"name": "mine", "evaluation_id": str(own.pk)}, format="json")
    assert created.status_code == 201, created.content
    listed = client.get("/api/regression/baselines").json()
    assert [row["name"] for row in listed["results"]] == ["mine"]
    # Their own run's evaluation checks against their own baseline; someone else's baseline is no baseline.
    assert client.post("/api/regression/check", {"baseline": "mine", "run_id": str(own_run.pk)},
                       format="json").status_code == 201
    assert client.post("/api/regression/check", {"baseline": "gate", "run_id": str(own_run.pk)},
                       format="json").status_code == 404
