"""Admin: dataset versions are read-only pages; traces get "Build dataset from selection" and a dataset filter."""

import pytest
from django.contrib.messages import get_messages

from apps.datasets.models import DatasetVersion
from apps.datasets.services import dataset_version_build
from apps.datasets.spec import parse_build_request

from .factories import store_traces

TRACES = "/admin/traces/trace/"
VERSIONS = "/admin/datasets/datasetversion/"


@pytest.fixture
def version(db):
    store_traces(12)
    built, _ = dataset_version_build(spec=parse_build_request(
        {"dataset_name": "admin", "dataset_version": "v1", "selection_strategy": "latest", "limit": 11,
         "split": {"train": 0.5, "val": 0.5}, "seed": 1}))
    return built


@pytest.mark.django_db
def test_a_viewer_sees_the_list_and_a_read_only_detail(client, viewer, version):
    client.force_login(viewer)
    assert "admin-v1" in client.get(VERSIONS).content.decode()
    body = client.get(f"{VERSIONS}admin-v1/change/").content.decode()
    assert version.content_hash in body and "render_template" in body
    assert f"{version.train_count} / {version.val_count} / 0" in body
    assert "… 1 more" in body  # 11 trace ids, shortened in the page
    assert f"{TRACES}?dataset=admin-v1" in body
    assert 'name="_save"' not in body and "/delete/" not in body


@pytest.mark.django_db
def test_the_traces_link_shows_exactly_the_versions_traces(client, curator, version):
    client.force_login(curator)
    response = client.get(f"{TRACES}?dataset=admin-v1")
    assert response.status_code == 200
    shown = {str(t.pk) for t in response.context["cl"].result_list}
    assert shown == set(version.manifest["trace_ids"])


@pytest.mark.django_db
def test_nobody_adds_or_changes_a_version_and_only_superusers_delete(client, curator, superuser, version):
    client.force_login(curator)
    assert client.get(f"{VERSIONS}add/").status_code == 403
    assert client.post(f"{VERSIONS}admin-v1/change/", {"name": "x"}).status_code == 403
    assert client.post(f"{VERSIONS}admin-v1/delete/", {"post": "yes"}).status_code == 403
    client.force_login(superuser)
    assert client.post(f"{VERSIONS}admin-v1/change/", {"name": "x"}).status_code == 403
    client.post(f"{VERSIONS}admin-v1/delete/", {"post": "yes"})
    assert not DatasetVersion.objects.filter(pk="admin-v1").exists()


@pytest.mark.django_db
def test_build_from_selection_asks_for_a_name_then_builds(client, curator):
    traces = store_traces(4) + store_traces(1, status="captured")
    client.force_login(curator)
    data = {"action": "build_dataset_from_selection", "_selected_action": [str(t.pk) for t in traces]}
    first = client.post(TRACES, data)
    assert first.status_code == 200 and b"dataset_name" in first.content
    assert DatasetVersion.objects.count() == 0
    form = {"dataset_name": "picked", "dataset_version": "v1", "train": "1", "val": "0", "test": "0", "seed": "0"}
    response = client.post(TRACES, {**data, **form, "apply": "1"}, follow=True)
    version = DatasetVersion.objects.get(pk="picked-v1")
    assert version.manifest["trace_ids"] == [str(t.pk) for t in traces[:4]]  # the unapproved one is left out
    assert version.manifest["provenance"]["source"] == "admin selection"
    assert any("picked-v1" in str(m) for m in get_messages(response.wsgi_request))


@pytest.mark.django_db
def test_a_bad_build_from_selection_reports_the_problem(client, curator):
    traces = store_traces(2, status="captured")
    client.force_login(curator)
    form = {"dataset_name": "picked", "dataset_version": "v1", "train": "1", "val": "0", "test": "0", "seed": "0",
            "action": "build_dataset_from_selection", "_selected_action": [str(t.pk) for t in traces], "apply": "1"}
    response = client.post(TRACES, form, follow=True)
    assert any("No traces match" in str(m) for m in get_messages(response.wsgi_request))
    assert DatasetVersion.objects.count() == 0


@pytest.mark.django_db
def test_a_viewer_is_not_offered_the_build_action(client, viewer, version):
    client.force_login(viewer)
    assert 'value="build_dataset_from_selection"' not in client.get(TRACES).content.decode()
