"""A run with the learned tokenizer and packed rows keeps its tokenizer in the run folder, loads it
back when it resumes after a kill, and reproduces the uninterrupted run's losses bit for bit."""

import hashlib

import pytest

from training.engine import train
from training.generate import generate, load_model
from training.render import render_prompt
from training.run_files import RunMismatchError, read_json
from training.tests.engine_helpers import (
    CliRun,
    arithmetic_traces,
    kill_after_checkpoint,
    run_losses,
    tiny_config,
    write_config_yaml,
    write_sft_file,
)
from training.tokenizers import TOKENIZER_FILE

CHECKPOINT_EVERY = 50
MAX_STEPS = 200  # long enough that the child cannot finish before the kill (see test_resume_is_exact)


def spm_config(tokenizer="spm", **overrides):
    return tiny_config(tokenizer=tokenizer, spm_vocab_size=512, packing=True, batch_size=2, **overrides)


def test_a_killed_spm_packed_run_resumes_from_its_own_tokenizer_with_the_same_losses(tmp_path):
    config = spm_config(max_steps=MAX_STEPS, checkpoint_every=CHECKPOINT_EVERY)
    data = write_sft_file(tmp_path / "data.jsonl", arithmetic_traces(160, seed=3))
    config_path = write_config_yaml(tmp_path / "cfg.yaml", config)
    train(config, data, tmp_path / "uninterrupted", peak_flops=1e11)
    expected = run_losses(tmp_path / "uninterrupted")

    kill_after_checkpoint(config_path, data, tmp_path / "resumed", CHECKPOINT_EVERY)
    saved = (tmp_path / "resumed" / TOKENIZER_FILE).read_bytes()

    restarted = CliRun(config_path, data, tmp_path / "resumed")
    assert restarted.finish() == 0
    messages = [e.get("message", "") for e in restarted.events]
    assert any(m.startswith("tokenizer spm-v1 loaded from tokenizer.model") for m in messages)
    assert any(m.startswith("resumed from checkpoint at step") for m in messages)
    assert (tmp_path / "resumed" / TOKENIZER_FILE).read_bytes() == saved
    assert run_losses(tmp_path / "resumed") == expected


@pytest.mark.parametrize(("kind", "encoding"), [("spm", "spm-v1"), ("spm_letters", "spm-letters-v1")])
def test_the_tokenizer_hash_is_recorded_and_generation_loads_it_from_the_run_folder(tmp_path, kind, encoding):
    data = write_sft_file(tmp_path / "data.jsonl", arithmetic_traces(80, seed=1))
    result = train(spm_config(kind, max_steps=6), data, tmp_path / "run", peak_flops=1e11)
    digest = hashlib.sha256((tmp_path / "run" / TOKENIZER_FILE).read_bytes()).hexdigest()
    assert read_json(tmp_path / "run" / "run_config.json")["tokenizer_sha256"] == digest
    assert result.manifest["tokenizer_sha256"] == digest and result.manifest["tokenizer"] == encoding
    assert result.manifest["model"]["vocab_size"] == load_model(tmp_path / "run").tokenizer.vocab_size
    assert 0 < result.manifest["data"]["padding_fraction"] < 0.5
    loaded = load_model(tmp_path / "run")
    assert (loaded.tokenizer.sha256, loaded.tokenizer.name) == (digest, encoding)
    assert len(generate(loaded, [render_prompt("Write 'kite' backwards.")], max_new_tokens=8)) == 1


def test_a_replaced_tokenizer_is_refused_on_resume_and_on_load(tmp_path):
    data = write_sft_file(tmp_path / "data.jsonl", arithmetic_traces(80, seed=1))
    config = spm_config(max_steps=4, warmup_steps=1, checkpoint_every=2)
    train(config, data, tmp_path / "run", peak_flops=1e11)
    other = write_sft_file(tmp_path / "other.jsonl", arithmetic_traces(80, seed=2))
    train(config, other, tmp_path / "other", peak_flops=1e11)
    (tmp_path / "run" / TOKENIZER_FILE).write_bytes((tmp_path / "other" / TOKENIZER_FILE).read_bytes())
    with pytest.raises(RunMismatchError, match="tokenizer_sha256"):
        train(config, data, tmp_path / "run", peak_flops=1e11)
    with pytest.raises(ValueError, match="not the tokenizer"):
        load_model(tmp_path / "run")
