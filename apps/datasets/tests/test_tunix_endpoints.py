"""POST /api/tunix/sft/export and /api/tunix/sft/manifest."""

import json

import pytest
import yaml

from apps.core.testing import key_client
from apps.datasets.models import DatasetVersion
from training.config import TrainConfig

from .factories import build_body, store_traces


@pytest.fixture
def dataset(builder):
    store_traces(20)
    builder.post("/api/datasets/build", build_body(seed=5, split={"train": 0.5, "val": 0.5}), format="json")
    version = DatasetVersion.objects.get(pk="unit-v1")
    assert version.train_count and version.val_count  # 20 traces: all in one split has odds of 2 in a million
    return version


@pytest.mark.django_db
def test_sft_export_streams_the_same_lines_as_the_dataset_export(trainer, dataset):
    client = key_client(trainer, "read")  # an export is a read, even though it is a POST
    response = client.post("/api/tunix/sft/export", {"dataset_id": "unit-v1", "split": "train"}, format="json")
    assert response.status_code == 200, response.content
    body = b"".join(response.streaming_content)
    same = client.get("/api/datasets/unit-v1/export.jsonl?format=tunix_sft&split=train")
    assert body == b"".join(same.streaming_content)
    rows = [json.loads(line) for line in body.splitlines()]
    assert len(rows) == dataset.train_count and all(row["completion"].endswith("<end_of_turn>") for row in rows)


@pytest.mark.django_db
def test_sft_export_of_an_unknown_dataset_is_404(trainer):
    response = key_client(trainer, "read").post("/api/tunix/sft/export", {"dataset_id": "nope-v9"}, format="json")
    assert response.status_code == 404


@pytest.mark.django_db
def test_the_manifest_is_yaml_with_the_dataset_hash_export_url_and_a_valid_config(trainer, dataset):
    config = {"model": "tiny", "max_steps": 50, "batch_size": 4, "learning_rate": 0.001, "seed": 3}
    response = key_client(trainer, "read").post("/api/tunix/sft/manifest",
                                                {"dataset_id": "unit-v1", "config": config}, format="json")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/yaml")
    manifest = yaml.safe_load(response.content)
    assert manifest["dataset"]["id"] == "unit-v1"
    assert manifest["dataset"]["content_hash"] == dataset.content_hash
    assert manifest["data"]["format"] == "tunix_sft" and manifest["data"]["split"] == "train"
    assert manifest["data"]["url"].startswith("http://testserver/api/datasets/unit-v1/export.jsonl?format=tunix_sft")
    assert manifest["data"]["lines"] == dataset.train_count
    parsed = TrainConfig.from_dict(manifest["config"])
    assert parsed.max_steps == 50 and parsed.seed == 3
    assert manifest["config_hash"] == parsed.config_hash()


@pytest.mark.django_db
def test_the_manifest_without_a_config_uses_the_defaults(trainer, dataset):
    response = key_client(trainer, "read").post("/api/tunix/sft/manifest", {"dataset_id": "unit-v1"}, format="json")
    assert yaml.safe_load(response.content)["config"] == TrainConfig().to_dict()


@pytest.mark.django_db
@pytest.mark.parametrize("config, key", [
    ({"max_steps": 0}, "config.max_steps"),
    ({"learning_rat": 0.1}, "config.learning_rat"),
    ({"backend": "builtin", "lora": {"rank": 4, "alpha": 8}}, "config.lora"),
    ("fast", "config"),  # not an object: named as the field itself
])
def test_a_bad_config_is_400_naming_the_key(trainer, dataset, config, key):
    response = key_client(trainer, "read").post("/api/tunix/sft/manifest",
                                                {"dataset_id": "unit-v1", "config": config}, format="json")
    assert response.status_code == 400
    assert key in response.json()["detail"], response.json()


@pytest.mark.django_db
def test_a_manifest_for_an_empty_split_is_400(trainer, dataset):
    response = key_client(trainer, "read").post("/api/tunix/sft/manifest",
                                                {"dataset_id": "unit-v1", "split": "test"}, format="json")
    assert response.status_code == 400 and "split" in response.json()["detail"]


@pytest.mark.django_db
def test_unknown_body_keys_are_named(trainer, dataset):
    response = key_client(trainer, "read").post("/api/tunix/sft/export", {"dataset_id": "unit-v1", "fmt": "x"},
                                                format="json")
    assert response.status_code == 400 and "fmt" in response.json()["detail"]
