"""Eval sets are stored from their folder (by seed_datasets), immutable like dataset versions."""

import json

import pytest
from django.core.management import call_command

from apps.core.errors import Conflict
from apps.evaluations.models import EvalItem, EvalSet
from apps.evaluations.services import eval_set_load
from training.run_files import file_sha256


def _folder(tmp_path, items, name="mini-v1"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "items.jsonl").write_text("".join(json.dumps(item) + "\n" for item in items))
    (folder / "manifest.json").write_text(json.dumps({"dataset_id": name,
                                                      "content_hash": file_sha256(folder / "items.jsonl")}))
    return folder


ITEMS = [{"id": f"m-{i}", "prompt": f"What is {i} + 1?", "expected_answer": str(i + 1), "category": "arithmetic",
          "difficulty": "easy", "section": "in_distribution"} for i in range(3)]


@pytest.mark.django_db
def test_a_folder_is_loaded_once_and_then_unchanged(tmp_path):
    folder = _folder(tmp_path, ITEMS)
    eval_set, state = eval_set_load(folder=folder)
    assert state == "created" and eval_set.item_count == 3
    assert list(EvalItem.objects.filter(eval_set=eval_set).values_list("item_id", flat=True)) == ["m-0", "m-1", "m-2"]
    assert eval_set_load(folder=folder)[1] == "unchanged"


@pytest.mark.django_db
def test_other_items_under_a_stored_id_are_a_conflict(tmp_path):
    eval_set_load(folder=_folder(tmp_path, ITEMS))
    (tmp_path / "x").mkdir()
    other = _folder(tmp_path / "x", ITEMS[:2])
    with pytest.raises(Conflict):
        eval_set_load(folder=other)
    assert EvalSet.objects.get().item_count == 3


@pytest.mark.django_db
def test_seed_datasets_stores_eval_v1(datasets_dir_setting):
    call_command("seed_datasets", dev_count=30, stdout=open("/dev/null", "w"))  # eval-v1 is the same either way
    eval_set = EvalSet.objects.get(pk="eval-v1")
    assert eval_set.item_count == EvalItem.objects.filter(eval_set=eval_set).count() >= 200


@pytest.fixture
def datasets_dir_setting(settings, tmp_path):
    settings.DATASETS_DIR = tmp_path / "datasets"
