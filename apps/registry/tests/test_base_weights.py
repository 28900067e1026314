"""A version of a LoRA run holds its adapters and the sha256 of the base weights and tokenizer they were
trained over; downloading or evaluating it after those weights changed in the server's models folder is
refused with a clear 409, instead of pairing the adapters with other weights."""

import io
import json
import shutil
import tarfile

import pytest
from django.utils import timezone

from apps.core.testing import key_client
from apps.registry.models import ModelVersion, RegisteredModel
from apps.runs.models import TrainingRun
from apps.runs.storage import RunPaths, record_artifacts

pytest.importorskip("tunix")

GEMMA = "gemma-tiny-it"
CONFIG = {"backend": "tunix", "model": "gemma3-tiny", "max_steps": 2, "batch_size": 4, "learning_rate": 3e-3,
          "warmup_steps": 1, "max_seq_len": 48, "checkpoint_every": 0, "seed": 0, "lora": {"rank": 2, "alpha": 4.0}}


@pytest.fixture(scope="session")
def lora_run_out(tmp_path_factory):
    """A real LoRA run over a gemma3-tiny folder named GEMMA, trained once for the session."""
    from training.backends import tunix_backend, tunix_tiny
    from training.tests.tunix_helpers import arithmetic_rows

    root = tmp_path_factory.mktemp("lora-run")
    tunix_tiny.write_tiny_model_dir(root / "models" / GEMMA, seed=0)
    tunix_backend.train({**CONFIG, "model_dir": str(root / "models" / GEMMA)}, arithmetic_rows(8), root / "out",
                        data_hash="lora-data")
    return root


@pytest.fixture
def lora_version(lora_run_out, dataset, trainer, settings):
    shutil.copytree(lora_run_out / "models" / GEMMA, settings.MODELS_DIR / GEMMA)
    run = TrainingRun.objects.create(
        dataset_version=dataset, dataset_content_hash=dataset.content_hash, config={**CONFIG, "model_dir": GEMMA},
        config_hash="1" * 64, backend="tunix", model="gemma3-tiny", seed=0, max_steps=2, steps_completed=2,
        status="completed", attempt=1, started_at=timezone.now(), finished_at=timezone.now(), created_by=trainer,
        auto_evaluate=False)
    shutil.copytree(lora_run_out / "out", RunPaths.of(run).out)
    record_artifacts(run, RunPaths.of(run))
    RegisteredModel.objects.create(name="reasoner", created_by=trainer)
    response = key_client(trainer).post("/api/models/reasoner/versions/promote", {"run_id": str(run.pk)},
                                        format="json")
    assert response.status_code == 201, response.content
    return ModelVersion.objects.get(pk=response.json()["id"])


def _download(user, version):
    return key_client(user).get(f"/api/models/versions/{version.pk}/download")


def _evaluate(user, version):
    return key_client(user).post(f"/api/models/versions/{version.pk}/evaluate", {"eval_set": "small-v1"},
                                 format="json")


@pytest.mark.django_db
def test_a_lora_version_keeps_its_adapters_and_the_hashes_of_what_they_need(lora_version, lora_run_out, trainer):
    run_config = json.loads((lora_run_out / "out" / "run_config.json").read_text())
    assert lora_version.base_weights_sha256 == run_config["base_weights"]["sha256"]
    assert lora_version.tokenizer_sha256 == run_config["tokenizer"]["sha256"]
    assert (lora_version.base_model_dir, lora_version.base_weights_included) == (GEMMA, False)
    paths = set(lora_version.files.values_list("path", flat=True))
    assert not any(path.endswith(".safetensors") for path in paths)  # adapters, not a copy of the base
    response = _download(trainer, lora_version)
    assert response.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(b"".join(response.streaming_content))) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile(names[0]))
        downloaded_config = tar.extractfile(next(n for n in names if n.endswith("/run_config.json"))).read().decode()
    assert manifest["base_weights"] == {"sha256": lora_version.base_weights_sha256, "included": False,
                                        "tokenizer_sha256": lora_version.tokenizer_sha256, "model_dir": GEMMA}
    assert str(lora_run_out) not in downloaded_config and '"model_dir": "gemma-tiny-it"' in downloaded_config


@pytest.mark.django_db
@pytest.mark.parametrize("change", ["replaced", "removed"])
def test_download_and_evaluation_are_refused_when_the_base_weights_changed(lora_version, trainer, settings,
                                                                          small_set, change):
    from safetensors.numpy import save_file

    from training.backends.tunix_tiny import random_hf_weights

    folder = settings.MODELS_DIR / GEMMA
    if change == "replaced":
        save_file(random_hf_weights("gemma3-tiny", seed=5), str(folder / "model.safetensors"))
    else:
        shutil.rmtree(folder)
    code = "base_weights_changed" if change == "replaced" else "base_weights_missing"
    for response in (_download(trainer, lora_version), _evaluate(trainer, lora_version)):
        assert response.status_code == 409 and response.json()["error"] == code, response.content
        assert GEMMA in response.json()["detail"] and str(settings.MODELS_DIR) not in response.json()["detail"]


@pytest.mark.django_db
def test_evaluating_a_version_over_unchanged_weights_is_accepted(lora_version, trainer, small_set):
    response = _evaluate(trainer, lora_version)
    assert response.status_code in (200, 202), response.content
