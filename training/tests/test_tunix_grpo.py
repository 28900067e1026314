"""GRPO on the tunix backend (Tunix's GRPOLearner + RLCluster) on CPU with gemma3-tiny: from a tunix SFT run's
LoRA checkpoint, with the product's judges as the reward, into the same run files as the builtin GRPO.
Skipped only when the optional google-tunix extra is not installed."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tunix")
pytest.importorskip("qwix")

import jax  # noqa: E402
from flax import nnx  # noqa: E402

from training.backends import tunix_backend, tunix_generate  # noqa: E402
from training.grpo.config import GRPOConfig  # noqa: E402
from training.grpo.trainer import grpo_train  # noqa: E402
from training.hooks import CollectingHooks  # noqa: E402
from training.init_from import InitRunError  # noqa: E402
from training.judges import JUDGE_VERSIONS  # noqa: E402
from training.run_files import read_json, read_metrics  # noqa: E402
from training.tests import tunix_helpers  # noqa: E402

STEPS = 4
PROMPTS = [{"prompt": f"What is {a} + {b}?", "expected_answer": str(a + b)} for a in range(3) for b in range(3)]
GRPO = {"max_steps": STEPS, "prompts_per_step": 2, "group_size": 2, "max_new_tokens": 12, "learning_rate": 1e-3,
        "temperature": 1.0, "checkpoint_every": 2, "sample_every": 2, "sample_count": 3, "seed": 0,
        "reward": {"judges": {"answer_exact": 1.0, "format": 0.5}}}


@pytest.fixture(scope="module", autouse=True)
def fast_compilation(tmp_path_factory):
    with tunix_helpers.fast_compilation(str(tmp_path_factory.mktemp("jax_cache"))):
        yield


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory):
    """A LoRA SFT run of gemma3-tiny whose random base weights live in its own folder."""
    out_dir = tmp_path_factory.mktemp("runs") / "sft"
    config = {"backend": "tunix", "model": "gemma3-tiny", "max_steps": 2, "warmup_steps": 1, "batch_size": 2,
              "learning_rate": 3e-3, "max_seq_len": 48, "checkpoint_every": 0, "seed": 0,
              "lora": {"rank": 4, "alpha": 8.0}}
    result = tunix_backend.train(config, tunix_helpers.arithmetic_rows(), out_dir, CollectingHooks(), "data-1",
                                 peak_flops=1e11)
    assert result.status == "completed"
    return out_dir


@pytest.fixture(scope="module")
def grpo_run(sft_run):
    out_dir = sft_run.with_name("grpo")
    hooks = CollectingHooks()
    return grpo_train(GRPO, PROMPTS, sft_run, out_dir, hooks), hooks, out_dir


def _lora(model) -> list[np.ndarray]:
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(nnx.state(model, nnx.LoRAParam))]


def test_grpo_from_a_tunix_run_writes_the_builtin_grpo_run_files(grpo_run, sft_run):
    result, hooks, out_dir = grpo_run
    assert result.status == "completed" and result.steps_completed == STEPS
    lines = read_metrics(out_dir / "metrics.jsonl")
    assert [line["step"] for line in lines] == list(range(1, STEPS + 1)) == [m["step"] for m in hooks.steps]
    for line in lines:
        for key in ("loss", "kl", "clip_fraction", "grad_norm", "reward_mean", "reward_std",
                    "reward_answer_exact_mean", "reward_format_mean", "zero_signal_fraction",
                    "completion_length_mean", "completion_length_max", "truncated_fraction",
                    "sample_seconds", "update_seconds", "lr"):
            assert key in line and np.isfinite(line[key]), key
        assert 0 < line["completion_length_mean"] <= GRPO["max_new_tokens"]
    samples = [json.loads(line) for line in (out_dir / "samples.jsonl").read_text().splitlines()]
    assert [record["step"] for record in samples] == [2, 4]
    first = samples[0]["samples"]
    assert len(first) == 3 and set(first[0]["judges"]) == {"answer_exact", "format"}
    assert first[0]["prompt"] in {p["prompt"] for p in PROMPTS} and first[0]["completion"] is not None
    # Checkpoints where every other run keeps them, not in Tunix's own actor/ subfolder.
    assert sorted(p.name for p in (out_dir / "checkpoints").iterdir()) == ["2", "4"]
    run_config = read_json(out_dir / "run_config.json")
    assert run_config["backend"] == "tunix" and run_config["algorithm"] == "grpo"
    assert run_config["init_from"]["folder"] == sft_run.name and run_config["init_from"]["step"] == 2
    assert run_config["tunix_model"] == {"model": "gemma3-tiny", "lora": {"rank": 4, "alpha": 8.0}, "seed": 0}
    assert run_config["model_dir"] == "base_model" and (out_dir / "base_model" / "tokenizer.model").is_file()
    assert run_config["reward"]["versions"] == {name: JUDGE_VERSIONS[name] for name in ("answer_exact", "format")}
    assert result.manifest["config_hash"] == run_config["config_hash"]


def test_the_grpo_run_generates_from_its_own_checkpoint_and_moved_the_adapters(grpo_run, sft_run):
    _, _, out_dir = grpo_run
    trained, _, step = tunix_generate.load_run_weights(out_dir)
    start, _, _ = tunix_generate.load_run_weights(sft_run)
    assert step == STEPS
    assert any(not np.array_equal(a, b) for a, b in zip(_lora(trained), _lora(start), strict=True))
    texts = tunix_generate.generate(out_dir, [PROMPTS[0]["prompt"]], max_new_tokens=8)
    assert len(texts) == 1 and isinstance(texts[0], str)


def test_cancelled_grpo_resumes_to_the_same_adapters(grpo_run, sft_run):
    _, _, full_dir = grpo_run
    out_dir = sft_run.with_name("grpo-resumed")
    first = grpo_train(GRPO, PROMPTS, sft_run, out_dir, CollectingHooks(cancel_after_steps=1))
    assert first.status == "cancelled" and 0 < first.steps_completed < STEPS
    resumed_hooks = CollectingHooks()
    second = grpo_train(GRPO, PROMPTS, sft_run, out_dir, resumed_hooks)
    assert second.status == "completed" and second.steps_completed == STEPS
    assert any(f"resumed from checkpoint at step {first.steps_completed}" in line for line in resumed_hooks.logs)
    assert [line["step"] for line in read_metrics(out_dir / "metrics.jsonl")] == list(range(1, STEPS + 1))
    full, _, _ = tunix_generate.load_run_weights(full_dir)
    resumed, _, _ = tunix_generate.load_run_weights(out_dir)
    for a, b in zip(_lora(full), _lora(resumed), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_parent_that_is_not_a_tunix_run_or_lacks_the_step_is_refused_before_the_folder_exists(sft_run, tmp_path):
    with pytest.raises(InitRunError, match="no checkpoint at step 7"):
        grpo_train(GRPOConfig(max_steps=1), PROMPTS, sft_run, tmp_path / "a", init_step=7)
    assert not (tmp_path / "a").exists()
