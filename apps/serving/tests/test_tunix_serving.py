"""A Tunix LoRA version answers through Tunix's sampler, with the adapters over the base weights it was
trained on, exactly as the Tunix backend's own generator does."""

import pytest

from apps.core.testing import key_client
from apps.registry.tests.test_base_weights import GEMMA, lora_run_out, lora_version  # noqa: F401 - fixtures

pytest.importorskip("tunix")


@pytest.mark.django_db
def test_a_tunix_version_answers_as_its_backend_generates(trainer, lora_version, lora_run_out,  # noqa: F811
                                                          monkeypatch):
    from training.backends import tunix_backend
    from training.base_weights import MODELS_DIR_ENV

    monkeypatch.setenv(MODELS_DIR_ENV, str(lora_run_out / "models"))  # where this process finds the weights

    body = {"model": "reasoner:v1", "messages": [{"role": "user", "content": "What is 2 + 3?"}], "max_tokens": 8,
            "temperature": 0}
    response = key_client(trainer).post("/v1/chat/completions", body, format="json")
    assert response.status_code == 200, response.content
    answer = response.json()
    expected = tunix_backend.generate_details(lora_run_out / "out", ["What is 2 + 3?"], 8)[0]
    assert answer["choices"][0]["message"]["content"] == expected.text
    assert answer["usage"]["completion_tokens"] == len(expected.token_ids) and answer["usage"]["prompt_tokens"] > 0


@pytest.mark.django_db
def test_a_tunix_version_whose_base_weights_changed_is_refused(trainer, lora_version, settings):  # noqa: F811
    from safetensors.numpy import save_file

    from training.backends.tunix_tiny import random_hf_weights

    save_file(random_hf_weights("gemma3-tiny", seed=5), str(settings.MODELS_DIR / GEMMA / "model.safetensors"))
    body = {"model": "reasoner:v1", "messages": [{"role": "user", "content": "What is 2 + 3?"}], "max_tokens": 8}
    response = key_client(trainer).post("/v1/chat/completions", body, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "base_weights_changed"


@pytest.mark.django_db
def test_a_tunix_prompt_beyond_the_context_is_400(trainer, lora_version):  # noqa: F811
    body = {"model": "reasoner:v1", "messages": [{"role": "user", "content": "2 + 3 " * 200}], "max_tokens": 8}
    response = key_client(trainer).post("/v1/chat/completions", body, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "context_length_exceeded"
