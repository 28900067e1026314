"""POST /api/datasets/build: selection in the database, determinism, immutability, manifests."""

import hashlib
import json
from datetime import timedelta

import pytest

from apps.datasets import storage
from apps.datasets.content import split_cuts, split_for
from apps.datasets.models import DatasetItem, DatasetVersion
from apps.traces.models import Trace
from apps.traces.services import trace_edit

from .factories import build_body, store_traces

BUILD = "/api/datasets/build"
SPEC_MANIFEST_FIELDS = {
    "dataset_id", "name", "version", "dataset_schema_version", "created_at", "created_by", "filters", "selection",
    "trace_count", "trace_ids", "splits", "stats", "content_hash", "render_template", "provenance", "session_id",
    "parent_dataset_id",
}


def _build(client, **body):
    return client.post(BUILD, build_body(**body), format="json")


def _export(client, dataset_id, fmt="trace", split=None):
    url = f"/api/datasets/{dataset_id}/export.jsonl?format={fmt}" + (f"&split={split}" if split else "")
    response = client.get(url)
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content)


@pytest.mark.django_db
def test_building_the_same_request_twice_gives_the_same_hash_and_bytes(builder, django_capture_on_commit_callbacks):
    store_traces(5)
    request = {"selection_strategy": "random", "seed": 3, "limit": 4, "split": {"train": 0.5, "val": 0.5}}
    with django_capture_on_commit_callbacks(execute=True):
        first = _build(builder, **request)
    exports = {fmt: _export(builder, "unit-v1", fmt) for fmt in ("trace", "tunix_sft", "training_example", "messages")}
    second = _build(builder, **request)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["content_hash"] == second.json()["content_hash"]
    assert second.json()["created"] is False
    assert DatasetVersion.objects.count() == 1
    for fmt, data in exports.items():
        assert _export(builder, "unit-v1", fmt) == data
    on_disk = (storage.version_dir("unit-v1") / "data.jsonl").read_bytes()
    assert on_disk == exports["trace"]
    assert hashlib.sha256(on_disk).hexdigest() == first.json()["content_hash"]


@pytest.mark.django_db
def test_the_manifest_holds_every_spec_field_on_disk_and_in_the_row(builder, django_capture_on_commit_callbacks):
    traces = store_traces(3)
    with django_capture_on_commit_callbacks(execute=True):
        response = _build(builder, session_id="s-1", provenance={"notebook": "kaggle"})
    assert response.status_code == 201, response.content
    row = DatasetVersion.objects.get(pk="unit-v1")
    on_disk = json.loads((storage.version_dir("unit-v1") / "manifest.json").read_text())
    assert on_disk == row.manifest
    assert SPEC_MANIFEST_FIELDS <= set(on_disk)
    assert on_disk["trace_ids"] == [str(t.id) for t in traces]
    assert on_disk["selection"] == {"strategy": "all", "seed": None, "limit": None, "stratify_by": None}
    assert on_disk["splits"] == {"train": 3, "val": 0, "test": 0}
    assert on_disk["stats"]["min_steps"] == 3 and on_disk["stats"]["category_counts"] == {"arithmetic": 3}
    assert on_disk["provenance"]["notebook"] == "kaggle"
    assert {"builder_version", "build_timestamp", "git_sha", "source"} <= set(on_disk["provenance"])
    assert on_disk["render_template"] == {"name": "gemma_reasoning", "version": "1"}
    assert on_disk["created_by"] == "curator via key curator-write"
    assert on_disk["filters"] == {"status": "approved"}
    assert on_disk["session_id"] == "s-1" and on_disk["parent_dataset_id"] is None


@pytest.mark.django_db
def test_splits_are_a_pure_function_of_trace_id_and_seed(builder):
    traces = store_traces(40)
    ratios = {"train": 0.5, "val": 0.3, "test": 0.2}
    _build(builder, seed=7, split=ratios)
    _build(builder, version="v2", seed=7, split=ratios)
    _build(builder, version="v3", seed=8, split=ratios)
    splits = {v: dict(DatasetItem.objects.filter(dataset_id=f"unit-{v}").values_list("trace_id", "split"))
              for v in ("v1", "v2", "v3")}
    expected = {t.id: split_for(str(t.id), 7, split_cuts(ratios)) for t in traces}
    assert splits["v1"] == splits["v2"] == expected
    assert splits["v3"] != splits["v1"]
    assert set(expected.values()) == {"train", "val", "test"}
    version = DatasetVersion.objects.get(pk="unit-v1")
    assert version.split_counts == {s: list(expected.values()).count(s) for s in ("train", "val", "test")}


@pytest.mark.django_db
def test_random_needs_a_seed(builder):
    store_traces(2)
    response = _build(builder, selection_strategy="random", limit=1)
    assert response.status_code == 400
    assert "seed" in response.json()["detail"]


@pytest.mark.django_db
def test_random_selection_is_seeded(builder):
    store_traces(30)
    picks = {}
    for version, seed in (("v1", 1), ("v2", 1), ("v3", 2)):
        _build(builder, version=version, selection_strategy="random", seed=seed, limit=10)
        picks[version] = DatasetVersion.objects.get(pk=f"unit-{version}").manifest["trace_ids"]
    assert picks["v1"] == picks["v2"]
    assert picks["v1"] != picks["v3"]
    assert len(set(picks["v1"])) == 10


@pytest.mark.django_db
def test_stratified_balances_the_values_of_a_meta_key(builder):
    store_traces(30, meta={"level": "a"})
    store_traces(10, meta={"level": "b"})
    store_traces(4, meta={"level": "c"})
    store_traces(3, meta={"other": 1})  # no value for the key: not part of any stratum
    response = _build(builder, selection_strategy="stratified", stratify_by="level", limit=18)
    assert response.status_code == 201, response.content
    version = DatasetVersion.objects.get(pk="unit-v1")
    assert version.manifest["selection"]["strata"] == {"a": 7, "b": 7, "c": 4}
    levels = [Trace.objects.get(pk=i).meta["level"] for i in version.manifest["trace_ids"]]
    assert {v: levels.count(v) for v in "abc"} == {"a": 7, "b": 7, "c": 4}
    assert sorted(levels[:3]) == ["a", "b", "c"]  # round-robin order: every prefix stays balanced


@pytest.mark.django_db
def test_stratified_without_a_limit_takes_as_many_of_each_value_as_the_rarest_has(builder):
    store_traces(6, meta={"level": "a"})
    store_traces(2, meta={"level": "b"})
    _build(builder, selection_strategy="stratified", stratify_by="level")
    assert DatasetVersion.objects.get(pk="unit-v1").manifest["selection"]["strata"] == {"a": 2, "b": 2}


@pytest.mark.django_db
def test_stratified_needs_stratify_by(builder):
    store_traces(2)
    response = _build(builder, selection_strategy="stratified")
    assert response.status_code == 400
    assert "stratify_by" in response.json()["detail"]


@pytest.mark.django_db
def test_an_empty_selection_is_400_naming_the_filters(builder):
    store_traces(2, status="captured")
    response = _build(builder, filters={"source": "nowhere"})
    assert response.status_code == 400
    detail = response.json()["detail"]["filters"][0]
    assert "No traces match" in detail and "nowhere" in detail and "approved" in detail
    assert DatasetVersion.objects.count() == 0


@pytest.mark.django_db
def test_rebuilding_an_id_with_other_content_is_a_conflict(builder):
    store_traces(2)
    assert _build(builder).status_code == 201
    store_traces(1)
    response = _build(builder)
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "dataset_exists" and body["differs_in"] == "other traces"
    assert body["existing_content_hash"] == DatasetVersion.objects.get(pk="unit-v1").content_hash
    assert DatasetItem.objects.filter(dataset_id="unit-v1").count() == 2


@pytest.mark.django_db
def test_other_split_ratios_on_the_same_id_are_a_conflict(builder):
    store_traces(20)
    _build(builder, split={"train": 0.5, "val": 0.5})
    assert _build(builder, split={"train": 0.9, "val": 0.1}).status_code == 409


@pytest.mark.django_db
def test_an_edited_trace_does_not_change_a_built_version(builder, curator):
    traces = store_traces(2)
    _build(builder)
    before = _export(builder, "unit-v1")
    trace_edit(trace=traces[0], data={**traces[0].as_trace_json(), "final_answer": "changed"}, actor=curator)
    assert _export(builder, "unit-v1") == before
    assert _build(builder).status_code == 409


@pytest.mark.django_db
def test_filters_run_on_status_source_category_tags_meta_and_dates(builder):
    old = store_traces(3, meta={"lang": "en"})
    new = store_traces(3, meta={"lang": "fr", "tags": ["unit", "gold"]},
                       start=old[-1].created_at + timedelta(hours=1))
    store_traces(2, status="captured", meta={"lang": "fr"})
    cases = [
        ({}, old + new),
        ({"meta": {"lang": "fr"}}, new),
        ({"tags": ["gold"]}, new),
        ({"created_after": new[0].created_at.isoformat()}, new),
        ({"created_before": new[0].created_at.isoformat()}, old),
        ({"category": "arithmetic", "source": "test"}, old + new),
        ({"status": "captured"}, None),
        ({"ids": [str(old[0].id), str(new[0].id)]}, [old[0], new[0]]),
    ]
    for n, (filters, expected) in enumerate(cases):
        response = _build(builder, version=f"v{n}", filters=filters)
        assert response.status_code == 201, (filters, response.content)
        ids = DatasetVersion.objects.get(pk=f"unit-v{n}").manifest["trace_ids"]
        if expected is None:
            assert len(ids) == 2 and all(Trace.objects.get(pk=i).status == "captured" for i in ids)
        else:
            assert ids == [str(t.id) for t in expected], filters


@pytest.mark.django_db
def test_latest_takes_the_newest_traces_first(builder):
    traces = store_traces(5)
    _build(builder, selection_strategy="latest", limit=2)
    assert DatasetVersion.objects.get(pk="unit-v1").manifest["trace_ids"] == [str(traces[4].id), str(traces[3].id)]


@pytest.mark.django_db
def test_all_refuses_to_truncate_silently(builder):
    store_traces(3)
    response = _build(builder, limit=2)
    assert response.status_code == 400
    assert "never truncates" in response.json()["detail"]["limit"][0]


@pytest.mark.django_db
@pytest.mark.parametrize("body, field", [
    ({"dataset_name": "Dev/../x"}, "dataset_name"),
    ({"dataset_version": "v-1"}, "dataset_version"),
    ({"limit": 100_001}, "limit"),
    ({"colour": "red"}, "colour"),
    ({"filters": {"colour": "red"}}, "filters.colour"),
    ({"filters": {"meta": {"a__b": 1}}}, "filters.meta.a__b"),
    ({"filters": {"status": "done"}}, "filters.status"),
    ({"split": {"train": 0.5, "val": 0.2}}, "split"),
    ({"split": {"train": 1.0, "holdout": 0}}, "split"),
    ({"parent_dataset_id": "nope-v1"}, "parent_dataset_id"),
    ({"stratify_by": "level"}, "stratify_by"),
])
def test_a_bad_request_is_400_naming_the_field(builder, body, field):
    store_traces(1)
    response = _build(builder, **body)
    assert response.status_code == 400, response.content
    assert field in response.json()["detail"], response.json()


@pytest.mark.django_db
def test_a_child_version_records_its_parent(builder):
    store_traces(2)
    _build(builder)
    response = _build(builder, version="v2", parent_dataset_id="unit-v1")
    assert response.json()["parent_dataset_id"] == "unit-v1"
    assert DatasetVersion.objects.get(pk="unit-v2").manifest["parent_dataset_id"] == "unit-v1"
