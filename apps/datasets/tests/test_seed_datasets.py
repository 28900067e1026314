"""manage.py seed_datasets: generator traces approved with an audit trail, versions built, eval set written."""

import hashlib
import io
import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from apps.datasets import storage
from apps.datasets.models import DatasetItem, DatasetVersion
from apps.traces.models import CurationEvent, Trace
from apps.traces.services import trace_review
from training.generators import generate
from training.trace_schema import canonical_json


def _seed(capture):
    out = io.StringIO()
    with capture(execute=True):
        call_command("seed_datasets", dev_count=30, stdout=out, stderr=out)
    return out.getvalue()


def _snapshot(root: Path) -> dict:
    files = {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
             for p in sorted(root.rglob("*")) if p.is_file()}
    return {
        "traces": sorted(Trace.objects.values_list("id", "status", "content_hash")),
        "events": CurationEvent.objects.count(),
        "versions": sorted(DatasetVersion.objects.values_list("id", "content_hash", "created_at")),
        "items": DatasetItem.objects.count(),
        "files": files,
    }


@pytest.mark.django_db
def test_seeding_stores_approves_builds_and_writes_the_eval_set(datasets_dir, django_capture_on_commit_callbacks):
    output = _seed(django_capture_on_commit_callbacks)
    assert "dataset dev-reasoning-v1: built, 30 traces" in output
    dev = DatasetVersion.objects.get(pk="dev-reasoning-v1")
    golden = DatasetVersion.objects.get(pk="golden-v1")
    assert golden.trace_count == len(generate("golden-v1").items)
    assert dev.manifest["split"]["ratios"] == {"train": 0.9, "val": 0.1, "test": 0.0}
    assert dev.split_counts["train"] + dev.split_counts["val"] == 30 and dev.split_counts["test"] == 0
    assert Trace.objects.exclude(status="approved").count() == 0
    events = CurationEvent.objects.all()
    assert events.count() == Trace.objects.count()
    assert set(events.values_list("reason", "to_status", "actor_label")) == {
        ("seeded by generator", "approved", "seed_datasets")}
    for dataset_id in ("dev-reasoning-v1", "dev-reasoning-v2", "golden-v1"):
        folder = storage.version_dir(dataset_id)
        manifest = json.loads((folder / "manifest.json").read_text())
        assert storage.file_sha256(folder / "data.jsonl") == manifest["content_hash"]


@pytest.mark.django_db
def test_dev_reasoning_v2_is_seeded_beside_v1_from_its_own_traces(datasets_dir, django_capture_on_commit_callbacks):
    output = _seed(django_capture_on_commit_callbacks)
    assert "dataset dev-reasoning-v2: built, 30 traces" in output
    v1, v2 = (DatasetVersion.objects.get(pk=f"dev-reasoning-{v}") for v in ("v1", "v2"))
    assert v1.content_hash != v2.content_hash
    assert set(Trace.objects.filter(meta__generator="dev-reasoning-v2").values_list("meta__generator_version",
                                                                                     flat=True)) == {"3"}


@pytest.mark.django_db
def test_the_eval_set_files_hold_the_generator_items_and_their_hash(datasets_dir, django_capture_on_commit_callbacks):
    _seed(django_capture_on_commit_callbacks)
    folder = storage.version_dir("eval-v1")
    items = [json.loads(line) for line in (folder / "items.jsonl").read_text().splitlines()]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert items == generate("eval-v1").items and len(items) >= 200
    assert set(items[0]) == {"id", "prompt", "expected_answer", "category", "difficulty", "section"}
    assert manifest["content_hash"] == storage.file_sha256(folder / "items.jsonl")
    assert manifest["item_count"] == len(items)


@pytest.mark.django_db
def test_running_it_twice_changes_nothing(datasets_dir, django_capture_on_commit_callbacks):
    _seed(django_capture_on_commit_callbacks)
    before = _snapshot(datasets_dir)
    output = _seed(django_capture_on_commit_callbacks)
    assert _snapshot(datasets_dir) == before
    assert "dataset dev-reasoning-v1: unchanged" in output and "eval set eval-v1: unchanged" in output


@pytest.mark.django_db
def test_a_curator_rejection_survives_a_reseed(datasets_dir, django_capture_on_commit_callbacks, curator):
    _seed(django_capture_on_commit_callbacks)
    trace = Trace.objects.filter(meta__generator="dev-reasoning-v1").first()
    trace_review(trace=trace, to_status="rejected", reason="wrong", actor=curator)
    output = _seed(django_capture_on_commit_callbacks)
    trace.refresh_from_db()
    assert trace.status == "rejected"
    assert "dev-reasoning-v1: left unchanged" in output  # the stored version stays as it was
    assert DatasetVersion.objects.get(pk="dev-reasoning-v1").trace_count == 30


@pytest.mark.django_db
def test_an_eval_set_with_other_content_is_never_overwritten(datasets_dir, django_capture_on_commit_callbacks):
    _seed(django_capture_on_commit_callbacks)
    items_file = storage.version_dir("eval-v1") / "items.jsonl"
    items_file.write_text('{"id": "tampered"}\n')
    with pytest.raises(Exception, match="immutable"):
        _seed(django_capture_on_commit_callbacks)
    assert items_file.read_text() == '{"id": "tampered"}\n'


def test_the_committed_eval_set_matches_its_generator():
    """datasets/eval-v1 in the repository is exactly what the generator produces (or it needs a new version)."""
    folder = Path(settings.BASE_DIR) / "datasets" / "eval-v1"
    generated = generate("eval-v1")
    expected = "".join(canonical_json(item) + "\n" for item in generated.items).encode("utf-8")
    assert (folder / "items.jsonl").read_bytes() == expected
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["content_hash"] == hashlib.sha256(expected).hexdigest()
