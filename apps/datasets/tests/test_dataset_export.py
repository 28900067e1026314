"""GET /api/datasets, /api/datasets/{id} and /api/datasets/{id}/export.jsonl."""

import json
import uuid

import pytest

from apps.core.testing import key_client
from apps.datasets import selectors
from apps.datasets.models import DatasetVersion
from apps.traces.services import trace_create

from .factories import build_body, store_traces

KNOWN_TRACE = {
    "trace_version": "1.0",
    "prompt": "What is 2 + 3?",
    "steps": [{"i": 0, "type": "compute", "content": "2 + 3 = 5"},
              {"i": 1, "type": "verify", "content": "Check: 5 - 3 = 2"}],
    "final_answer": "5",
    "meta": {"source": "spec", "category": "arithmetic"},
}
# SPEC §3, written out by hand so that a change in the renderer cannot pass unnoticed.
SPEC_PROMPT = "<start_of_turn>user\nWhat is 2 + 3?<end_of_turn>\n<start_of_turn>model\n"
SPEC_COMPLETION = "<reasoning>2 + 3 = 5\nCheck: 5 - 3 = 2</reasoning><answer>5</answer><end_of_turn>"


def _lines(response) -> list[dict]:
    assert response.status_code == 200, response.content
    assert response.streaming and response["Content-Type"].startswith("application/x-ndjson")
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body == "" or body.endswith("\n")
    return [json.loads(line) for line in body.splitlines()]


@pytest.fixture
def built(builder, curator):
    trace, _ = trace_create(data=KNOWN_TRACE, user=curator)
    trace.status = "approved"
    trace.save(update_fields=["status"])
    others = store_traces(5)
    response = builder.post("/api/datasets/build", build_body(split={"train": 0.5, "val": 0.25, "test": 0.25}),
                            format="json")
    assert response.status_code == 201, response.content
    return DatasetVersion.objects.get(pk="unit-v1"), trace, others


@pytest.mark.django_db
def test_a_known_trace_exports_the_exact_spec_tunix_sft_strings(builder, built):
    _, trace, _ = built
    lines = _lines(builder.get("/api/datasets/unit-v1/export.jsonl?format=tunix_sft"))
    row = next(line for line in lines if line["id"] == str(trace.id))
    assert row["prompt"] == SPEC_PROMPT
    assert row["completion"] == SPEC_COMPLETION
    assert row["text"] == SPEC_PROMPT + SPEC_COMPLETION
    assert row["final_answer"] == "5"
    assert row["metadata"] == {"source": "spec", "category": "arithmetic"}
    assert set(row) == {"id", "prompt", "completion", "text", "final_answer", "metadata"}


@pytest.mark.django_db
def test_every_format_has_one_line_per_trace_in_manifest_order(builder, built):
    version, trace, _ = built
    order = version.manifest["trace_ids"]
    exports = {fmt: _lines(builder.get(f"/api/datasets/unit-v1/export.jsonl?format={fmt}"))
               for fmt in ("trace", "tunix_sft", "training_example", "messages")}
    assert [row["id"] for row in exports["trace"]] == order
    assert [row["id"] for row in exports["tunix_sft"]] == order
    assert [row["metadata"]["source_trace_id"] for row in exports["training_example"]] == order
    assert len(exports["messages"]) == len(order)
    first = order.index(str(trace.id))
    assert exports["trace"][first] == {"id": str(trace.id), **KNOWN_TRACE}
    example = exports["training_example"][first]
    assert example["response"] == SPEC_COMPLETION.removesuffix("<end_of_turn>")
    assert str(uuid.UUID(example["id"])) == example["id"] != str(trace.id)
    assert exports["messages"][first] == {"messages": [
        {"role": "user", "content": "What is 2 + 3?"},
        {"role": "assistant", "content": SPEC_COMPLETION.removesuffix("<end_of_turn>")}]}


@pytest.mark.django_db
def test_the_default_format_is_trace_and_the_file_carries_the_hash(builder, built):
    version, _, _ = built
    response = builder.get("/api/datasets/unit-v1/export.jsonl")
    assert response["X-Dataset-Content-Hash"] == version.content_hash
    assert "unit-v1-trace.jsonl" in response["Content-Disposition"]
    assert len(_lines(response)) == 6


@pytest.mark.django_db
def test_a_split_export_holds_exactly_that_split_in_order(builder, built):
    version, _, _ = built
    assignment = dict(zip(version.manifest["trace_ids"], version.manifest["split_assignment"], strict=True))
    seen = []
    for split in ("train", "val", "test"):
        rows = _lines(builder.get(f"/api/datasets/unit-v1/export.jsonl?format=tunix_sft&split={split}"))
        assert all(assignment[row["id"]] == split for row in rows)
        assert len(rows) == version.split_counts[split]
        seen += [row["id"] for row in rows]
    assert sorted(seen) == sorted(assignment)


@pytest.mark.django_db
def test_exports_page_through_the_items_in_order(builder, built, monkeypatch):
    monkeypatch.setattr(selectors, "EXPORT_CHUNK", 2)
    response = builder.get("/api/datasets/unit-v1/export.jsonl")
    chunks = list(response.streaming_content)
    assert len(chunks) == 3
    assert [json.loads(line)["id"] for line in b"".join(chunks).splitlines()] == built[0].manifest["trace_ids"]


@pytest.mark.django_db
def test_an_unknown_format_is_400(builder, built):
    response = builder.get("/api/datasets/unit-v1/export.jsonl?format=csv")
    assert response.status_code == 400
    assert "csv" in response.json()["detail"]["format"][0] and "tunix_sft" in response.json()["detail"]["format"][0]


@pytest.mark.django_db
def test_an_unknown_split_is_400(builder, built):
    assert builder.get("/api/datasets/unit-v1/export.jsonl?split=holdout").status_code == 400


@pytest.mark.django_db
def test_an_unknown_dataset_is_404(builder):
    for path in ("/api/datasets/nope-v1", "/api/datasets/nope-v1/export.jsonl?format=tunix_sft"):
        response = builder.get(path)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


@pytest.mark.django_db
def test_the_list_is_paginated_and_the_detail_has_the_manifest(builder):
    store_traces(2)
    for version in ("v1", "v2", "v3"):
        builder.post("/api/datasets/build", build_body(version=version), format="json")
    page = builder.get("/api/datasets?limit=2").json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    assert "manifest" not in page["results"][0]
    assert page["results"][0]["export_url"].endswith("/export.jsonl")
    detail = builder.get("/api/datasets/unit-v2").json()
    assert detail["manifest"]["dataset_id"] == "unit-v2" and detail["splits"] == {"train": 2, "val": 0, "test": 0}


@pytest.mark.django_db
def test_someone_without_dataset_access_sees_no_versions(builder, owner):
    store_traces(2)
    builder.post("/api/datasets/build", build_body(), format="json")
    contributor = key_client(owner, "read")
    assert contributor.get("/api/datasets").json()["count"] == 0
    assert contributor.get("/api/datasets/unit-v1").status_code == 404
