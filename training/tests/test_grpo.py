"""GRPO on the builtin model: reward specs, group advantages, the masked loss, learning, exact resume.

One short SFT run on single-digit additions is the starting point for every test. After 60 steps the
tiny model writes the `<reasoning>…</reasoning><answer>…</answer>` format in about a quarter of its
samples at temperature 1, which leaves GRPO room to raise the `format` reward within twenty steps.
"""

import io
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from training import judges
from training.checkpoints import CheckpointStore
from training.config import ConfigError
from training.generate import generate_batch, left_pad, load_model, prompt_length
from training.grpo.config import GRPOConfig, step_seed
from training.grpo.loss import completion_batch, grpo_loss
from training.grpo.trainer import grpo_run_config, grpo_train
from training.hooks import CollectingHooks, JsonEventHooks
from training.render import render_prompt
from training.rewards import RewardSpec, group_advantages
from training.run_files import RUN_CONFIG_FILE, RunMismatchError, read_json, read_metrics
from training.tests.engine_helpers import train_addition_start

PROMPTS = [{"prompt": f"What is {a} + {b}?", "expected_answer": str(a + b)} for a in range(5) for b in range(5)]
ALL_JUDGES = {"answer_exact": 1.0, "format": 0.5, "reasoning_checks": 0.25}
TIMING_KEYS = ("sample_seconds", "update_seconds")
SHORT_RUN = {
    "max_steps": 4, "prompts_per_step": 4, "group_size": 4, "max_new_tokens": 64, "learning_rate": 1e-3,
    "inner_updates": 2, "checkpoint_every": 2, "sample_every": 2, "sample_count": 4, "seed": 3,
    "reward": {"judges": ALL_JUDGES},
}
RESUME_PROMPTS = PROMPTS[:10]  # 4 prompts a step: step 3 already reaches into the second epoch


class Killed(Exception):
    pass


class KillAfterStep(CollectingHooks):
    """Dies right after `step` is logged, like a process killed between checkpoints."""

    def __init__(self, step: int):
        super().__init__()
        self.step = step

    def on_step(self, metrics: dict) -> None:
        super().on_step(metrics)
        if metrics["step"] == self.step:
            raise Killed


@pytest.fixture(scope="module")
def init_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("grpo")
    return train_addition_start(root)


@pytest.fixture(scope="module")
def short_run(init_dir):
    out = init_dir.parent / "short"
    events = io.StringIO()
    result = grpo_train(SHORT_RUN, RESUME_PROMPTS, init_dir, out, JsonEventHooks(events))
    return out, result, [json.loads(line) for line in events.getvalue().splitlines()]


# --- reward specs ----------------------------------------------------------------------------

@pytest.mark.parametrize(("judges_value", "field"), [
    ({"answer_exact": 1.0, "bogus": 1.0}, "reward.judges.bogus"),
    ({"format": -0.5}, "reward.judges.format"),
    ({"format": math.nan}, "reward.judges.format"),
    ({"format": math.inf}, "reward.judges.format"),
    ({"format": "1"}, "reward.judges.format"),
    ({"format": True}, "reward.judges.format"),
    ({"format": 0, "answer_exact": 0.0}, "reward.judges"),
    ({}, "reward.judges"),
])
def test_a_bad_reward_spec_names_the_judge_or_field(judges_value, field):
    with pytest.raises(ConfigError) as raised:
        RewardSpec.from_dict({"judges": judges_value})
    assert list(raised.value.errors) == [field]
    assert field in str(raised.value)


def test_a_spec_pinned_to_another_judge_version_is_refused():
    with pytest.raises(ConfigError) as raised:
        RewardSpec.from_dict({"judges": {"format": 1}, "versions": {"format": "0"}})
    assert list(raised.value.errors) == ["reward.versions.format"]
    with pytest.raises(ConfigError, match="reward.versions.answer_exact"):
        RewardSpec.from_dict({"judges": {"format": 1}, "versions": {"answer_exact": "1"}})
    pinned = RewardSpec.from_dict({"judges": {"format": 1}, "versions": {"format": judges.JUDGE_VERSIONS["format"]}})
    assert pinned.to_dict() == {"judges": {"format": 1.0}, "versions": {"format": judges.JUDGE_VERSIONS["format"]}}


def test_the_reward_is_the_weighted_sum_of_the_judges():
    spec = RewardSpec.from_dict({"judges": ALL_JUDGES})
    right = "<reasoning>2 + 3 = 5</reasoning><answer>5</answer>"
    assert spec.reward(right, "5") == (1.75, {"answer_exact": 1.0, "format": 1.0, "reasoning_checks": 1.0})
    wrong_sum = "<reasoning>2 + 3 = 6</reasoning><answer>6</answer>"
    assert spec.reward(wrong_sum, "5") == (0.5, {"answer_exact": 0.0, "format": 1.0, "reasoning_checks": 0.0})
    assert spec.reward("5", "5") == (0.0, {"answer_exact": 0.0, "format": 0.0, "reasoning_checks": 0.0})


def test_the_grpo_config_reports_every_bad_key_at_once():
    with pytest.raises(ConfigError) as raised:
        GRPOConfig.from_dict({"group_size": 1, "temperature": 0, "nope": 1, "reward": {"judges": {"fmt": 1}}})
    assert set(raised.value.errors) == {"group_size", "temperature", "nope", "reward.judges.fmt"}
    config = GRPOConfig.from_dict({"reward": {"judges": {"format": 2}}})
    assert config.reward == {"judges": {"format": 2.0}, "versions": {"format": judges.JUDGE_VERSIONS["format"]}}


# --- advantages and the loss -----------------------------------------------------------------

def test_advantages_are_zero_for_a_constant_group_and_normalised_otherwise():
    rewards = np.asarray([[0.3, 0.3, 0.3, 0.3], [0.0, 1.0, 1.0, 0.0], [1.75, 0.5, 0.0, 0.25]])
    advantages, flat = group_advantages(rewards)
    assert flat.tolist() == [True, False, False]
    assert advantages[0].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert advantages[1].tolist() == pytest.approx([-1.0, 1.0, 1.0, -1.0], abs=1e-5)
    np.testing.assert_allclose(advantages[2].mean(), 0.0, atol=1e-6)
    np.testing.assert_allclose(advantages[2].std(), 1.0, atol=1e-5)
    assert np.argmax(advantages[2]) == 0 and np.argmin(advantages[2]) == 2


def test_the_loss_ignores_prompt_padding_and_the_slots_after_the_stop(init_dir):
    loaded = load_model(init_dir)
    tokenizer, pad = loaded.tokenizer, int(loaded.tokenizer.pad_id)
    prompts = [render_prompt("What is 1 + 2?"), render_prompt("What is 12 + 30? Show the sum.")]
    prompt_len = prompt_length(loaded, prompts)
    tokens, pads = left_pad([tokenizer.encode(p) for p in prompts], prompt_len, pad)
    completions = [tokenizer.encode(text + "<end_of_turn>") for text in (
        "<reasoning>1 + 2 = 3</reasoning><answer>3</answer>", "<reasoning>12 + 30 = 42</reasoning><answer>4")]
    batch = completion_batch(tokens, pads, completions, 64, pad)
    batch.update(advantages=np.asarray([1.0, -0.5], np.float32), ref_logp=np.full((2, 64), -0.5, np.float32),
                 old_logp=np.full((2, 64), -1.0, np.float32))
    assert pads[0] > 0 and batch["completion_mask"][0].sum() == len(completions[0])
    assert batch["buffer"][0, prompt_len + len(completions[0]) - 1] == tokenizer.end_of_turn_id  # in the mask

    loss_of = jax.jit(lambda b: grpo_loss(loaded.graphdef, loaded.params, b, prompt_len=prompt_len,
                                          temperature=1.0, beta=0.1, epsilon=0.2)[0])

    def loss_with(row: int, slot: int, token: int) -> float:
        changed = {key: value.copy() for key, value in batch.items()}
        changed["buffer"][row, slot] = token
        return float(loss_of({key: jnp.asarray(value) for key, value in changed.items()}))

    base = loss_with(0, 0, pad)
    assert loss_with(0, 0, ord("7")) == base  # a left-padding slot
    assert loss_with(0, int(pads[0]) - 1, tokenizer.eos_id) == base
    assert loss_with(0, prompt_len + len(completions[0]) + 1, ord("x")) == base  # after the stop token
    assert loss_with(0, prompt_len + 3, ord("x")) != base  # a completion token counts
    assert loss_with(0, prompt_len + len(completions[0]) - 1, ord("x")) != base  # so does the stop token


def test_a_step_samples_the_same_completions_for_the_same_seed_and_step(init_dir):
    loaded = load_model(init_dir)
    prompts = [render_prompt(item["prompt"]) for item in PROMPTS[:4] for _ in range(2)]
    first, again, other = (
        [g.token_ids for g in generate_batch(loaded, prompts, 24, 1.0, step_seed(0, step), len(prompts))]
        for step in (5, 5, 6))
    assert first == again and first != other


# --- runs ------------------------------------------------------------------------------------

def test_grpo_raises_the_format_reward(init_dir, tmp_path):
    config = {"max_steps": 20, "prompts_per_step": 8, "group_size": 8, "max_new_tokens": 64, "learning_rate": 1e-3,
              "warmup_steps": 5, "checkpoint_every": 0, "sample_every": 0, "reward": {"judges": {"format": 1.0}}}
    hooks = CollectingHooks()
    result = grpo_train(config, PROMPTS, init_dir, tmp_path / "run", hooks)
    assert result.status == "completed" and result.steps_completed == 20
    rewards = [step["reward_format_mean"] for step in hooks.steps]
    first, last = np.mean(rewards[:5]), np.mean(rewards[-5:])
    assert last > first + 0.15, f"format reward went from {first:.3f} to only {last:.3f}: {rewards}"
    assert max(step["kl"] for step in hooks.steps) > 0


def test_the_run_folder_loads_like_an_sft_run_and_records_its_origin(init_dir, short_run):
    out, result, events = short_run
    assert result.status == "completed" and result.steps_completed == 4
    run_config = read_json(out / RUN_CONFIG_FILE)
    assert run_config["algorithm"] == "grpo" and run_config["backend"] == "builtin"
    assert run_config["init_from"]["folder"] == init_dir.name and run_config["init_from"]["step"] == 60
    assert run_config["reward"] == {"judges": ALL_JUDGES, "versions": judges.JUDGE_VERSIONS}
    assert run_config["model"] == read_json(init_dir / RUN_CONFIG_FILE)["model"]
    loaded = load_model(out)
    assert loaded.step == 4 and generate_batch(loaded, [render_prompt("What is 1 + 1?")], 8)[0].token_ids
    assert result.manifest["algorithm"] == "grpo" and result.manifest["final_rewards"]["reward_mean_last_10"] >= 0

    steps = [event for event in events if event["event"] == "step"]
    assert [event["step"] for event in steps] == [1, 2, 3, 4]
    assert {event["step"] for event in events if event["event"] == "checkpoint"} == {2, 4}
    judge_keys = {f"reward_{name}_{stat}" for name in ALL_JUDGES for stat in ("mean", "std")}
    assert set(steps[0]) - {"event"} == {
        "step", "loss", "lr", "grad_norm", "kl", "clip_fraction", "entropy", "reward_mean", "reward_std",
        *judge_keys, "zero_signal_fraction", "completion_length_mean", "completion_length_max",
        "truncated_fraction", "sample_seconds", "update_seconds", "epoch"}
    assert [line["step"] for line in read_metrics(out / "metrics.jsonl")] == [1, 2, 3, 4]

    samples = read_metrics(out / "samples.jsonl")
    assert [line["step"] for line in samples] == [2, 4] and len(samples[0]["samples"]) == 4
    assert set(samples[0]["samples"][0]) == {"prompt", "expected_answer", "completion", "stopped", "reward",
                                             "judges", "advantage"}
    assert set(samples[0]["samples"][0]["judges"]) == set(ALL_JUDGES)


def test_a_killed_run_resumes_to_bit_identical_weights(init_dir, short_run, tmp_path):
    uninterrupted, _, _ = short_run
    out = tmp_path / "resumed"
    with pytest.raises(Killed):
        grpo_train(SHORT_RUN, RESUME_PROMPTS, init_dir, out, KillAfterStep(3))
    assert CheckpointStore(out, read_only=True).latest_step() == 2
    assert len(read_metrics(out / "metrics.jsonl")) == 3  # step 3 was logged but never checkpointed

    hooks = CollectingHooks()
    result = grpo_train(SHORT_RUN, RESUME_PROMPTS, init_dir, out, hooks)
    assert "resumed from checkpoint at step 2" in hooks.logs and result.steps_completed == 4
    expected, actual = load_model(uninterrupted).params, load_model(out).params
    same = jax.tree_util.tree_map(lambda a, b: bool(np.array_equal(np.asarray(a), np.asarray(b))), expected, actual)
    assert all(jax.tree_util.tree_leaves(same))

    def without_timings(path):
        return [{k: v for k, v in line.items() if k not in TIMING_KEYS} for line in read_metrics(path)]

    assert without_timings(out / "metrics.jsonl") == without_timings(uninterrupted / "metrics.jsonl")
    assert read_metrics(out / "samples.jsonl") == read_metrics(uninterrupted / "samples.jsonl")


def test_a_changed_judge_version_changes_the_recorded_reward_spec(init_dir, short_run, monkeypatch):
    uninterrupted, _, _ = short_run
    loaded = load_model(init_dir)
    current = judges.JUDGE_VERSIONS["format"]
    before = grpo_run_config(GRPOConfig.from_dict(SHORT_RUN), "data", init_dir, loaded)
    monkeypatch.setitem(judges.JUDGE_VERSIONS, "format", current + "-next")
    after = grpo_run_config(GRPOConfig.from_dict(SHORT_RUN), "data", init_dir, loaded)
    assert before["reward"]["versions"]["format"] == current
    assert after["reward"]["versions"]["format"] == current + "-next"
    assert after["config"]["reward"] == after["reward"] and after["config_hash"] != before["config_hash"]
    with pytest.raises(RunMismatchError, match="config_hash"):  # the run cannot continue under a new judge
        grpo_train(SHORT_RUN, RESUME_PROMPTS, init_dir, uninterrupted)
    with pytest.raises(ConfigError, match="reward.versions.format"):  # nor can a spec pinned to the old one
        GRPOConfig.from_dict({**SHORT_RUN, "reward": before["reward"]})
