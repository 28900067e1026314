"""`python -m training grpo` as a launcher runs it: a child process followed through its stdout events,
killed with SIGKILL and restarted to the same weights, stopped by a cancel file, refusing bad input.

The starting point is a short SFT run on single-digit additions (as in test_grpo), long enough that some
samples earn a reward, so the updates compared below carry real policy gradients, not only the KL term.
"""

import json
import signal
import subprocess
from pathlib import Path

import jax
import numpy as np
import pytest

from training.checkpoints import CheckpointStore
from training.generate import load_model
from training.run_files import read_json, read_metrics
from training.tests.engine_helpers import (
    CliProcess,
    train_addition_start,
)

REPO = Path(__file__).resolve().parents[2]
TIMING_KEYS = ("sample_seconds", "update_seconds")
CHECKPOINT_EVERY = 4
CONFIG = {
    "max_steps": 12, "prompts_per_step": 4, "group_size": 4, "max_new_tokens": 64, "learning_rate": 1e-3,
    "inner_updates": 2, "checkpoint_every": CHECKPOINT_EVERY, "sample_every": 2, "sample_count": 4, "seed": 1,
    "reward": {"judges": {"answer_exact": 1.0, "format": 0.5, "reasoning_checks": 0.25}},
}


class GrpoCli(CliProcess):
    """`python -m training grpo ...` in a subprocess."""

    def __init__(self, inputs: dict, out_dir: Path, *extra: str, stderr=subprocess.DEVNULL):
        super().__init__("grpo", "--config", str(inputs["config"]), "--prompts", str(inputs["prompts"]),
                         "--init", str(inputs["init"]), "--out", str(out_dir), *extra, cwd=REPO, stderr=stderr)

    def steps(self) -> dict[int, dict]:
        return {event["step"]: without_timings(event) for event in self.events if event["event"] == "step"}

    def of_kind(self, kind: str) -> list[dict]:
        return [event for event in self.events if event["event"] == kind]


def without_timings(metrics: dict) -> dict:
    return {key: value for key, value in metrics.items() if key not in TIMING_KEYS}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("grpo_cli")
    train_addition_start(root)
    prompts = root / "prompts.jsonl"
    with open(prompts, "w", encoding="utf-8") as handle:  # eval-item shaped: the extra keys are ignored
        for index, (a, b) in enumerate([(a, b) for a in range(5) for b in range(2)]):
            item = {"id": f"add-{index}", "section": "in_distribution", "prompt": f"What is {a} + {b}?",
                    "expected_answer": str(a + b)}
            handle.write(json.dumps(item) + "\n")
    config_path = root / "grpo.json"
    config_path.write_text(json.dumps(CONFIG), encoding="utf-8")
    return {"config": config_path, "prompts": prompts, "init": root / "sft", "root": root}


def with_config(inputs: dict, path: Path, **changes) -> dict:
    path.write_text(json.dumps({**CONFIG, **changes}), encoding="utf-8")
    return {**inputs, "config": path}


@pytest.fixture(scope="module")
def uninterrupted(inputs) -> tuple[GrpoCli, Path]:
    out = inputs["root"] / "uninterrupted"
    run = GrpoCli(inputs, out)
    assert run.finish() == 0
    return run, out


def test_a_run_killed_with_sigkill_resumes_to_bit_identical_weights(inputs, uninterrupted, tmp_path):
    uninterrupted, uninterrupted_dir = uninterrupted
    killed = GrpoCli(inputs, tmp_path / "resumed")
    killed.wait_for(lambda e: e["event"] == "checkpoint" and e["step"] == CHECKPOINT_EVERY)
    killed.wait_for(lambda e: e["event"] == "step" and e["step"] == CHECKPOINT_EVERY + 2)
    killed.process.send_signal(signal.SIGKILL)
    assert killed.finish() == -signal.SIGKILL  # finish() also reads what it printed before dying
    assert not killed.of_kind("done") and not (tmp_path / "resumed" / "run_manifest.json").exists()

    resumed = GrpoCli(inputs, tmp_path / "resumed")
    assert resumed.finish() == 0
    done = resumed.events[-1]
    assert done["event"] == "done" and done["status"] == "completed" and done["steps_completed"] == 12
    resumed_from = next(e for e in resumed.of_kind("log") if e["message"].startswith("resumed from"))
    checkpoint_step = int(resumed_from["message"].rsplit(" ", 1)[1])
    assert 0 < checkpoint_step < CONFIG["max_steps"]

    expected, actual = load_model(uninterrupted_dir).params, load_model(tmp_path / "resumed").params
    same = jax.tree_util.tree_map(lambda a, b: bool(np.array_equal(np.asarray(a), np.asarray(b))), expected, actual)
    assert jax.tree_util.tree_leaves(same) and all(jax.tree_util.tree_leaves(same))

    overlap = sorted(step for step in killed.steps() if step > checkpoint_step)
    assert overlap, "the kill landed on a checkpoint: no step was run twice"
    assert [killed.steps()[s] for s in overlap] == [resumed.steps()[s] for s in overlap]
    assert sorted(resumed.steps()) == list(range(checkpoint_step + 1, 13))
    assert resumed.steps() == {s: m for s, m in uninterrupted.steps().items() if s > checkpoint_step}
    assert [without_timings(line) for line in read_metrics(tmp_path / "resumed" / "metrics.jsonl")] == [
        without_timings(line) for line in read_metrics(uninterrupted_dir / "metrics.jsonl")]
    assert max(m["grad_norm"] for m in uninterrupted.steps().values()) > 0
    assert max(m["reward_std"] for m in uninterrupted.steps().values()) > 0  # some groups had a signal


def test_the_events_carry_checkpoints_samples_and_every_grpo_metric(uninterrupted):
    run, out = uninterrupted
    assert [e["step"] for e in run.of_kind("checkpoint")] == [4, 8, 12]
    assert [e["step"] for e in run.of_kind("samples")] == [2, 4, 6, 8, 10, 12]
    assert run.of_kind("samples") == [{"event": "samples", **line}
                                      for line in read_metrics(out / "samples.jsonl")]
    first = run.of_kind("step")[0]
    assert {"loss", "lr", "grad_norm", "kl", "clip_fraction", "entropy", "reward_mean", "reward_format_mean",
            "zero_signal_fraction", "completion_length_mean", "sample_seconds"} <= set(first)
    done = run.events[-1]
    assert done["event"] == "done" and done["status"] == "completed" and done["steps_completed"] == 12
    assert done["samples_path"] == str(out / "samples.jsonl")
    assert done["reward_mean_last_10"] == read_json(out / "run_manifest.json")["final_rewards"]["reward_mean_last_10"]


def test_the_cancel_file_stops_it_as_cancelled(inputs, tmp_path):
    cancel_file = tmp_path / "cancel"
    long = with_config(inputs, tmp_path / "long.json", max_steps=500, checkpoint_every=0)
    run = GrpoCli(long, tmp_path / "run", "--cancel-file", str(cancel_file))
    run.wait_for(lambda e: e["event"] == "step" and e["step"] >= 2)
    cancel_file.touch()
    assert run.finish() == 0
    done = run.events[-1]
    assert done["event"] == "done" and done["status"] == "cancelled" and done["cancel_reason"] == "cancel_file"
    last_step = max(run.steps())
    assert done["steps_completed"] == last_step < 500
    assert CheckpointStore(tmp_path / "run", read_only=True).latest_step() == last_step


def refused(inputs: dict, out_dir: Path, *extra: str) -> tuple[int, str, dict]:
    run = GrpoCli(inputs, out_dir, *extra, stderr=subprocess.PIPE)
    code = run.finish()
    return code, run.process.stderr.read(), run.events[-1]


def test_a_bad_config_exits_2_naming_the_field(inputs, tmp_path):
    code, stderr, error = refused(with_config(inputs, tmp_path / "bad.json", group_size=1), tmp_path / "run")
    assert code == 2 and "group_size" in stderr
    assert error["event"] == "error" and error["kind"] == "config_error" and list(error["errors"]) == ["group_size"]
    assert not (tmp_path / "run").exists()


def test_a_missing_prompts_file_exits_2(inputs, tmp_path):
    code, stderr, error = refused({**inputs, "prompts": tmp_path / "nope.jsonl"}, tmp_path / "run")
    assert code == 2 and "--prompts" in stderr and "nope.jsonl" in stderr
    assert error["event"] == "error" and error["kind"] == "input_error"


def test_an_init_folder_that_is_not_a_usable_run_exits_2(inputs, tmp_path):
    for backend in ("other", "tunix"):  # a tunix parent goes to Tunix's GRPO, which finds no checkpoint in it
        (tmp_path / backend).mkdir()
        (tmp_path / backend / "run_config.json").write_text(json.dumps({"backend": backend}), encoding="utf-8")
    for init, says in ((tmp_path / "empty", "run_config.json is missing"), (tmp_path / "other", "'other' run"),
                       (tmp_path / "tunix", "no checkpoint")):
        init.mkdir(exist_ok=True)
        code, stderr, error = refused({**inputs, "init": init}, tmp_path / "run")
        assert code == 2 and "--init" in stderr and says in stderr, stderr
        assert error["kind"] == "input_error"
    code, stderr, _ = refused(inputs, tmp_path / "run", "--init-step", "999")
    assert code == 2 and "at step 999" in stderr, stderr
    assert not (tmp_path / "run").exists()
