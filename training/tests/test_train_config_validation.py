import subprocess
import sys

import pytest

from training.config import ConfigError, TrainConfig


def errors_of(data) -> dict:
    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_dict(data)
    return caught.value.errors


def test_defaults_are_a_valid_builtin_config():
    config = TrainConfig.from_dict({})
    assert config.backend == "builtin" and config.model == "tiny"
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_unknown_keys_are_named():
    errors = errors_of({"learning_rte": 0.1, "epochs": 3})
    assert set(errors) == {"learning_rte", "epochs"}
    assert "Unknown key" in errors["epochs"][0]


def test_every_problem_is_reported_at_once():
    errors = errors_of({"max_steps": 0, "batch_size": "8", "schedule": "step", "learning_rate": -1})
    assert set(errors) == {"max_steps", "batch_size", "schedule", "learning_rate"}


def test_warmup_longer_than_training_is_impossible():
    errors = errors_of({"max_steps": 10, "warmup_steps": 11})
    assert errors["warmup_steps"] == ["Must not exceed max_steps (11 > 10)."]


def test_lora_is_rejected_for_the_builtin_backend():
    assert "only supported by the tunix backend" in errors_of({"lora": {"rank": 4, "alpha": 8}})["lora"][0]


def test_lora_keys_and_values_are_checked_for_tunix():
    lora = {"rank": 0, "alpha": 8, "drop": 1}
    errors = errors_of({"backend": "tunix", "model": "gemma3-tiny", "lora": lora})
    assert set(errors) == {"lora.rank", "lora.drop"}


def test_model_must_be_a_preset_of_its_backend():
    assert "not a preset of the builtin backend" in errors_of({"model": "gemma3-1b"})["model"][0]
    tunix_errors = errors_of({"backend": "tunix", "model": "small"})
    assert "not a preset of the tunix backend" in tunix_errors["model"][0]


def test_real_gemma_presets_need_a_model_dir_and_builtin_refuses_one():
    assert "Required" in errors_of({"backend": "tunix", "model": "gemma3-1b"})["model_dir"][0]
    assert "Only the tunix backend" in errors_of({"model_dir": "/weights"})["model_dir"][0]
    lora = {"rank": 8, "alpha": 16}
    data = {"backend": "tunix", "model": "gemma2-2b", "model_dir": "/weights", "lora": lora}
    config = TrainConfig.from_dict(data)
    assert config.lora == {"rank": 8, "alpha": 16.0}


def test_booleans_are_not_integers():
    assert "integer" in errors_of({"seed": True})["seed"][0]


def test_config_hash_is_stable_and_tracks_content():
    a = TrainConfig.from_dict({"learning_rate": 0.001})
    b = TrainConfig.from_dict({"learning_rate": 1e-3})
    assert a.config_hash() == b.config_hash() and len(a.config_hash()) == 64
    assert a.config_hash() != TrainConfig.from_dict({"learning_rate": 0.002}).config_hash()


def test_from_yaml_reads_and_validates(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("model: small\nmax_steps: 50\nwarmup_steps: 5\n")
    assert TrainConfig.from_yaml(path).model == "small"
    path.write_text("- not\n- a mapping\n")
    with pytest.raises(ConfigError, match="mapping"):
        TrainConfig.from_yaml(path)


def test_the_cli_prints_config_errors_without_a_traceback_and_exits_2(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("model: huge\nwarmup_steps: 900\nbatchsize: 4\n")
    data = tmp_path / "data.jsonl"
    data.write_text('{"prompt": "p", "completion": "c"}\n')
    result = subprocess.run(
        [sys.executable, "-m", "training", "train", "--config", str(config), "--data", str(data),
         "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    for key in ("model:", "warmup_steps:", "batchsize:"):
        assert key in result.stderr
    assert '"event": "error"' in result.stdout
    assert not (tmp_path / "run").exists()


def test_tokenizer_and_packing_default_to_bytes_and_one_example_per_row():
    config = TrainConfig.from_dict({})
    assert (config.tokenizer, config.packing, config.spm_vocab_size) == ("byte", False, 1024)


def test_tokenizer_vocabulary_and_packing_values_are_checked():
    errors = errors_of({"tokenizer": "bpe", "spm_vocab_size": 100, "packing": "yes"})
    assert set(errors) == {"tokenizer", "spm_vocab_size", "packing"}
    assert TrainConfig.from_dict({"tokenizer": "spm", "spm_vocab_size": 2048, "packing": True}).packing is True
    assert TrainConfig.from_dict({"tokenizer": "spm_letters"}).tokenizer == "spm_letters"


@pytest.mark.parametrize("tokenizer", ["spm", "spm_letters"])
def test_the_tunix_backend_refuses_a_learned_tokenizer_and_packing(tokenizer):
    errors = errors_of({"backend": "tunix", "model": "gemma3-tiny", "tokenizer": tokenizer, "packing": True})
    assert set(errors) == {"tokenizer", "packing"}
