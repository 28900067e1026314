"""Every evaluation and regression endpoint gets the inherited checks of EndpointContract: trainers
evaluate, set baselines and check; viewers read; contributors see no evaluations."""

import pytest

from apps.core.testing import Endpoint, EndpointContract
from apps.evaluations.models import Evaluation, RegressionBaseline, RegressionCheck
from apps.evaluations.regression import baseline_create

from .factories import scored_evaluation

ENDPOINTS = [
    # Contributors may not evaluate at all: 403 before the run is looked up.
    Endpoint("post", "/api/tunix/runs/{run}/evaluate", write=True, has_object=True, actor="trainer",
             body={"eval_set": "small-v1"}, out_of_scope=False),
    Endpoint("get", "/api/tunix/runs/{run}/evaluation", has_object=True, actor="viewer"),
    Endpoint("get", "/api/tunix/evaluations", actor="viewer"),
    Endpoint("get", "/api/evaluations/{evaluation}", has_object=True, actor="viewer"),
    Endpoint("get", "/api/evaluations/{evaluation}/predictions", has_object=True, actor="viewer"),
    Endpoint("get", "/api/regression/baselines", actor="viewer"),
    Endpoint("post", "/api/regression/baselines", write=True, actor="trainer",
             body=lambda ids: {"name": "another", "evaluation_id": str(ids["evaluation"])}),
    Endpoint("post", "/api/regression/check", write=True, actor="trainer",
             body=lambda ids: {"baseline": "gate", "evaluation_id": str(ids["evaluation"])}),
]


@pytest.fixture
def known(completed_run, small_set, django_capture_on_commit_callbacks):
    evaluation = scored_evaluation(completed_run, small_set, [True, False, True, False, True, False])
    baseline_create(data={"name": "gate", "evaluation_id": str(evaluation.pk)})
    return {"run": completed_run.pk, "evaluation": evaluation.pk}


@pytest.fixture
def unknown(known):
    missing = "00000000-0000-4000-8000-000000000000"
    return {"run": missing, "evaluation": missing}


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
class TestEvaluationEndpoints(EndpointContract):
    out_of_scope_actor = "owner"

    def state(self):
        return Evaluation.objects.count(), RegressionBaseline.objects.count(), RegressionCheck.objects.count()
