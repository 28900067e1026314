"""Every sweep endpoint gets the inherited checks of apps.core.testing.EndpointContract: trainers create,
start and cancel sweeps, viewers read them, contributors see none."""

import pytest

from apps.core.testing import Endpoint, EndpointContract, key_client
from apps.runs.testing import tiny_config
from apps.sweeps.models import SweepJob
from apps.sweeps.services import sweep_create

ENDPOINTS = [
    Endpoint("get", "/api/tuning/jobs", actor="viewer"),
    Endpoint("post", "/api/tuning/jobs", write=True, actor="trainer", body=lambda ids: {
        "dataset_id": ids["dataset"], "base_config": tiny_config(), "n_trials": 1, "metric": "final_loss",
        "search_space": {"learning_rate": {"type": "uniform", "low": 0.001, "high": 0.01}}}),
    Endpoint("get", "/api/tuning/jobs/{sweep}", has_object=True, actor="viewer"),
    Endpoint("post", "/api/tuning/jobs/{sweep}/start", write=True, has_object=True, actor="trainer",
             out_of_scope=False),
    Endpoint("post", "/api/tuning/jobs/{sweep}/cancel", write=True, has_object=True, actor="trainer",
             out_of_scope=False),
]


@pytest.fixture
def known(trainer, dataset):
    sweep = sweep_create(data={"dataset_id": dataset.pk, "base_config": tiny_config(), "n_trials": 1,
                               "metric": "final_loss",
                               "search_space": {"seed": {"type": "randint", "low": 0, "high": 5}}}, user=trainer)
    return {"dataset": dataset.pk, "sweep": sweep.pk}


@pytest.fixture
def unknown(known):
    return {**known, "sweep": "00000000-0000-4000-8000-000000000000"}


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
class TestSweepEndpoints(EndpointContract):
    out_of_scope_actor = "owner"

    def state(self):
        return list(SweepJob.objects.values_list("status", flat=True))


@pytest.mark.django_db
def test_a_contributor_sees_no_sweeps(owner, known):
    assert key_client(owner).get("/api/tuning/jobs").json()["count"] == 0
