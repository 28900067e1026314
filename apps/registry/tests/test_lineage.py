"""Lineage both ways on a pipeline built here (traces → dataset → run → evaluation → version), in a
bounded number of queries."""

import pytest

from apps.core.testing import key_client
from apps.evaluations.tests.factories import scored_evaluation
from apps.registry.models import RegisteredModel
from apps.registry.selectors import trace_lineage, version_lineage
from apps.registry.services import model_version_promote
from apps.traces.models import Trace
from apps.traces.services import trace_review


@pytest.fixture
def version(curator, completed_run, small_set):
    first = completed_run.dataset_version.items.order_by("position").values_list("trace_id", flat=True)[:5]
    for trace in Trace.objects.filter(pk__in=list(first)):
        trace_review(trace=trace, to_status="needs_review", reason="double-check", actor=curator)
    scored_evaluation(completed_run, small_set, [True, False, True, False, True, False])
    model = RegisteredModel.objects.create(name="reasoner")
    return model_version_promote(model=model, data={"run_id": str(completed_run.pk)})[0]


@pytest.mark.django_db
def test_a_version_walks_to_its_traces_and_their_curation_events(viewer, version, django_assert_max_num_queries):
    viewer.has_perm("traces.view_all_traces")  # the caller's permissions are loaded once per request
    with django_assert_max_num_queries(7):
        lineage = version_lineage(version, user=viewer, trace_limit=10)
    assert lineage["run"]["id"] == version.source_run_id
    assert lineage["dataset_version"]["id"] == version.dataset_version_id
    assert lineage["evaluations"][0]["primary_score"] == 0.5
    traces = lineage["traces"]["results"]
    assert len(traces) == 10 and lineage["traces"]["count"] == version.dataset_version.trace_count
    reviewed = [t for t in traces if any(e["reason"] == "double-check" for e in t["curation_events"])]
    assert reviewed


@pytest.mark.django_db
def test_a_trace_walks_back_to_every_model_trained_on_it(viewer, version, django_assert_max_num_queries):
    trace_id = version.dataset_version.items.order_by("position").first().trace_id
    with django_assert_max_num_queries(8):
        lineage = trace_lineage(user=viewer, trace_id=trace_id)
    assert lineage["dataset_versions"] == [version.dataset_version_id]
    assert [run["id"] for run in lineage["runs"]] == [version.source_run_id]
    assert [(v["model"], v["label"]) for v in lineage["model_versions"]] == [("reasoner", "v1")]
    body = key_client(viewer).get(f"/api/traces/{trace_id}/lineage").json()
    assert body["model_versions"][0]["label"] == "v1"


@pytest.mark.django_db
def test_the_admin_lineage_page_links_every_step(client, superuser, version):
    client.force_login(superuser)
    html = client.get(f"/admin/registry/modelversion/{version.pk}/lineage/").content.decode()
    for url in (f"/admin/runs/trainingrun/{version.source_run_id}/change/",
                f"/admin/datasets/datasetversion/{version.dataset_version_id}/change/", "/admin/traces/trace/"):
        assert url in html
