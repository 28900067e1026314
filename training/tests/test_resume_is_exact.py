"""A run killed with SIGKILL and restarted continues exactly where an uninterrupted run would be.

The comparison is BITWISE (`==` on the float losses written to metrics.jsonl): the batch for a step
is a pure function of (data hash, seed, step), the model has no dropout, and params plus optimizer
state are restored exactly, so the same compiled step sees the same inputs.
"""


import pytest

from training.engine import train
from training.run_files import RunMismatchError
from training.tests.engine_helpers import (
    CliRun,
    arithmetic_traces,
    kill_after_checkpoint,
    run_losses,
    tiny_config,
    write_config_yaml,
    write_sft_file,
)

CHECKPOINT_EVERY = 50
# Long enough that the child cannot finish before the kill, sent as soon as the test reads step 53: the
# ~150 steps left take seconds, the test's read-and-kill milliseconds.
MAX_STEPS = 200


def test_resume_is_exact_after_a_kill(tmp_path):
    config = tiny_config(max_steps=MAX_STEPS, checkpoint_every=CHECKPOINT_EVERY, grad_accum=2, batch_size=4)
    data = write_sft_file(tmp_path / "data.jsonl", arithmetic_traces(120, seed=3))
    config_path = write_config_yaml(tmp_path / "cfg.yaml", config)

    train(config, data, tmp_path / "uninterrupted", peak_flops=1e11)
    expected = run_losses(tmp_path / "uninterrupted")

    kill_after_checkpoint(config_path, data, tmp_path / "resumed", CHECKPOINT_EVERY)
    assert max(run_losses(tmp_path / "resumed")) < config.max_steps  # it really died mid-run

    restarted = CliRun(config_path, data, tmp_path / "resumed")
    assert restarted.finish() == 0
    resumed_from = next(e for e in restarted.events if e.get("message", "").startswith("resumed from"))
    checkpoint_step = int(resumed_from["message"].rsplit(" ", 1)[1])
    assert 0 < checkpoint_step < config.max_steps
    assert restarted.events[-1]["event"] == "done" and restarted.events[-1]["status"] == "completed"

    actual = run_losses(tmp_path / "resumed")
    assert sorted(actual) == list(range(1, config.max_steps + 1))  # no step lost or logged twice
    after_checkpoint = range(checkpoint_step + 1, config.max_steps + 1)
    assert [actual[s] for s in after_checkpoint] == [expected[s] for s in after_checkpoint]
    assert actual == expected


def test_resuming_with_other_data_is_refused(tmp_path):
    config = tiny_config(max_steps=5, checkpoint_every=5)
    first = write_sft_file(tmp_path / "a.jsonl", arithmetic_traces(20, seed=1))
    second = write_sft_file(tmp_path / "b.jsonl", arithmetic_traces(20, seed=2))
    train(config, first, tmp_path / "run", peak_flops=1e11)
    with pytest.raises(RunMismatchError, match="data_hash"):
        train(config, second, tmp_path / "run", peak_flops=1e11)


def test_a_run_resumed_at_its_last_step_keeps_its_final_metrics(tmp_path):
    """A retry whose worker died after the last checkpoint but before the end was recorded resumes at its
    final step and trains nothing: its manifest still reports the whole run's final loss (one manifest
    ending for both backends, read from metrics.jsonl)."""
    config = tiny_config(max_steps=6, checkpoint_every=3)
    data = write_sft_file(tmp_path / "a.jsonl", arithmetic_traces(20, seed=1))
    first = train(config, data, tmp_path / "run", peak_flops=1e11)
    again = train(config, data, tmp_path / "run", peak_flops=1e11)
    assert again.manifest["resumed_from_step"] == 6 and again.manifest["timings"]["steps_this_process"] == 0
    assert again.final_loss == first.final_loss is not None
    assert again.manifest["final_metrics"] == first.manifest["final_metrics"]
