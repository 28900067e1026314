"""Every registry endpoint gets the inherited checks of EndpointContract: trainers create models,
promote and move aliases; viewers read; contributors see no models; a contractor (write permissions,
no view-all) gets 404 for other people's models, versions, sweeps and the runs a body names."""

import pytest

from apps.core.testing import Endpoint, EndpointContract, key_client
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
             body=lambda ids: {"run_id": str(ids["run"])}, outsider="contractor"),
    # The contractor's own model, someone else's run in the body.
    Endpoint("post", "/api/models/{own_model}/versions/promote", write=True, has_object=True, actor="trainer",
             body=lambda ids: {"run_id": str(ids["run"])}, outsider="contractor"),
    Endpoint("put", "/api/models/{model}/aliases/candidate", write=True, has_object=True, actor="trainer",
             body={"version": "v1"}, outsider="contractor"),
    Endpoint("get", V, has_object=True, actor="viewer"),
    Endpoint("get", V + "/download", has_object=True, actor="viewer"),
    Endpoint("get", V + "/lineage", has_object=True, actor="viewer"),
    Endpoint("post", V + "/evaluate", write=True, has_object=True, actor="trainer", body={"eval_set": "small-v1"},
             outsider="contractor"),
    Endpoint("get", "/api/traces/{trace}/lineage", has_object=True, actor="viewer"),
    Endpoint("post", "/api/tuning/jobs/{sweep}/promote", write=True, has_object=True, actor="trainer",
             body={"model": "reasoner"}, outsider="contractor"),
    # The contractor's own sweep, someone else's model in the body.
    Endpoint("post", "/api/tuning/jobs/{own_sweep}/promote", write=True, has_object=True, actor="trainer",
             body=lambda ids: {"model": ids["model"]}, outsider="contractor"),
]


def _finished_sweep(run, **extra):
    sweep = SweepJob.objects.create(dataset_version=run.dataset_version, base_config={}, search_space={},
                                    n_trials=1, status="completed", **extra)
    trial = SweepTrial.objects.create(sweep=sweep, number=0, params={}, run=run, state="complete", value=1)
    SweepJob.objects.filter(pk=sweep.pk).update(best_trial=trial)
    return sweep


@pytest.fixture
def known(completed_run, another_run, small_set, contractor):
    model = RegisteredModel.objects.create(name="reasoner")
    RegisteredModel.objects.create(name="contractors", created_by=contractor)
    version, _ = model_version_promote(model=model, data={"run_id": str(completed_run.pk)})
    trace_id = version.dataset_version.items.first().trace_id
    return {"model": "reasoner", "version": version.pk, "run": completed_run.pk, "trace": trace_id,
            "sweep": _finished_sweep(completed_run).pk, "own_model": "contractors",
            "own_sweep": _finished_sweep(another_run, created_by=contractor).pk}


@pytest.fixture
def unknown(known):
    missing = "00000000-0000-4000-8000-000000000000"
    return {**known, "model": "no-such-model", "version": missing, "trace": missing, "sweep": missing,
            "own_model": "no-such-model", "own_sweep": missing}


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
class TestRegistryEndpoints(EndpointContract):
    out_of_scope_actor = "owner"

    def state(self):
        return RegisteredModel.objects.count(), ModelVersion.objects.count(), AliasEvent.objects.count()


@pytest.mark.django_db
def test_a_trace_lineage_lists_only_the_dataset_versions_its_caller_may_see(owner, curator):
    from apps.datasets.services import dataset_version_build
    from apps.datasets.spec import parse_build_request
    from apps.traces.services import trace_create, trace_review
    from apps.traces.testing import make_trace_body

    trace, _ = trace_create(data=make_trace_body(), user=owner)
    trace_review(trace=trace, to_status="approved", reason="ok", actor=curator)
    dataset_version_build(spec=parse_build_request({"dataset_name": "lineage", "dataset_version": "v1"}))
    assert key_client(curator).get(f"/api/traces/{trace.pk}/lineage").json()["dataset_versions"] == ["lineage-v1"]
    assert key_client(owner).get(f"/api/traces/{trace.pk}/lineage").json()["dataset_versions"] == []


@pytest.mark.django_db
def test_a_version_lineage_lists_only_the_traces_its_caller_may_see(owner, viewer, completed_run):
    from apps.registry.selectors import version_lineage

    model = RegisteredModel.objects.create(name="reasoner")
    version, _ = model_version_promote(model=model, data={"run_id": str(completed_run.pk)})
    everything = version_lineage(version, user=viewer)
    assert everything["traces"]["count"] == version.dataset_version.trace_count > 0
    nothing = version_lineage(version, user=owner)  # a contributor sees only their own traces: none of these
    assert (nothing["traces"]["count"], nothing["traces"]["results"]) == (0, [])
    assert nothing["dataset_version"]["trace_count"] is None and nothing["evaluations"] == []
