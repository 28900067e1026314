"""Every registry endpoint gets the inherited checks of EndpointContract: trainers create models,
promote and move aliases; viewers read; contributors see no models."""

import pytest

from apps.core.testing import Endpoint, EndpointContract
from apps.registry.models import AliasEvent, ModelVersion, RegisteredModel
from apps.registry.services import model_version_promote
from apps.sweeps.models import SweepJob, SweepTrial

V = "/api/models/versions/{version}"
ENDPOINTS = [
    Endpoint("get", "/api/models", actor="viewer"),
    Endpoint("post", "/api/models", write=True, actor="trainer", body={"name": "another"}),
    Endpoint("get", "/api/models/{model}", has_object=True, actor="viewer"),
    Endpoint("get", "/api/models/{model}/versions", has_object=True, actor="viewer"),
    Endpoint("post", "/api/models/{model}/versions/promote", write=True, has_object=True, actor="trainer",
             body=lambda ids: {"run_id": str(ids["run"])}, out_of_scope=False),
    Endpoint("put", "/api/models/{model}/aliases/candidate", write=True, has_object=True, actor="trainer",
             body={"version": "v1"}, out_of_scope=False),
    Endpoint("get", V, has_object=True, actor="viewer"),
    Endpoint("get", V + "/download", has_object=True, actor="viewer"),
    Endpoint("get", V + "/lineage", has_object=True, actor="viewer"),
    Endpoint("post", V + "/evaluate", write=True, has_object=True, actor="trainer", body={"eval_set": "small-v1"},
             out_of_scope=False),
    Endpoint("get", "/api/traces/{trace}/lineage", has_object=True, actor="viewer"),
    Endpoint("post", "/api/tuning/jobs/{sweep}/promote", write=True, has_object=True, actor="trainer",
             body={"model": "reasoner"}, out_of_scope=False),
]


@pytest.fixture
def known(completed_run, small_set):
    model = RegisteredModel.objects.create(name="reasoner")
    version, _ = model_version_promote(model=model, data={"run_id": str(completed_run.pk)})
    trace_id = version.dataset_version.items.first().trace_id
    sweep = SweepJob.objects.create(dataset_version=completed_run.dataset_version, base_config={}, search_space={},
                                    n_trials=1, status="completed")
    trial = SweepTrial.objects.create(sweep=sweep, number=0, params={}, run=completed_run, state="complete", value=1)
    SweepJob.objects.filter(pk=sweep.pk).update(best_trial=trial)
    return {"model": "reasoner", "version": version.pk, "run": completed_run.pk, "trace": trace_id,
            "sweep": sweep.pk}


@pytest.fixture
def unknown(known):
    missing = "00000000-0000-4000-8000-000000000000"
    return {**known, "model": "no-such-model", "version": missing, "trace": missing, "sweep": missing}


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
class TestRegistryEndpoints(EndpointContract):
    out_of_scope_actor = "owner"

    def state(self):
        return RegisteredModel.objects.count(), ModelVersion.objects.count(), AliasEvent.objects.count()
