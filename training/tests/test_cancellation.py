"""Cancelling a run (hook, cancel file or SIGTERM) finishes the step, checkpoints, and reports it."""

import signal

from training.checkpoints import CheckpointStore
from training.engine import train
from training.hooks import CollectingHooks
from training.run_files import read_json, read_metrics
from training.tests.engine_helpers import (
    CliRun,
    arithmetic_traces,
    tiny_config,
    write_config_yaml,
    write_sft_file,
)


def make_data(tmp_path):
    return write_sft_file(tmp_path / "data.jsonl", arithmetic_traces(60, seed=5))


def test_a_hook_cancel_stops_between_steps_and_checkpoints(tmp_path):
    hooks = CollectingHooks(cancel_after_steps=7)
    config = tiny_config(max_steps=40, checkpoint_every=0)
    result = train(config, make_data(tmp_path), tmp_path / "run", hooks, peak_flops=1e11)
    assert result.status == "cancelled" and result.steps_completed == 7
    assert [m["step"] for m in hooks.steps] == list(range(1, 8))
    assert CheckpointStore(tmp_path / "run", read_only=True).latest_step() == 7
    manifest = read_json(tmp_path / "run" / "run_manifest.json")
    assert manifest["status"] == "cancelled" and manifest["cancel_reason"] == "cancel_requested"


def test_a_cancelled_run_can_be_resumed_to_completion(tmp_path):
    data = make_data(tmp_path)
    hooks = CollectingHooks(cancel_after_steps=4)
    train(tiny_config(max_steps=12), data, tmp_path / "run", hooks, peak_flops=1e11)
    result = train(tiny_config(max_steps=12), data, tmp_path / "run", peak_flops=1e11)
    assert result.status == "completed" and result.manifest["resumed_from_step"] == 4
    assert [m["step"] for m in read_metrics(tmp_path / "run" / "metrics.jsonl")] == list(range(1, 13))


def start_cli(tmp_path, *extra) -> CliRun:
    config_path = write_config_yaml(tmp_path / "cfg.yaml", tiny_config(max_steps=3000, checkpoint_every=0))
    run = CliRun(config_path, make_data(tmp_path), tmp_path / "run", *extra)
    run.wait_for(lambda e: e.get("event") == "step" and e["step"] >= 3)
    return run


def assert_stopped_cleanly(run: CliRun, tmp_path, reason: str, *, status: str, exit_code: int) -> None:
    assert run.finish() == exit_code
    done = run.events[-1]
    assert done["event"] == "done" and done["status"] == status and done["cancel_reason"] == reason
    last_step = max(e["step"] for e in run.events if e["event"] == "step")
    assert done["steps_completed"] == last_step < 3000
    assert CheckpointStore(tmp_path / "run", read_only=True).latest_step() == last_step


def test_the_cli_stops_when_the_cancel_file_appears(tmp_path):
    cancel_file = tmp_path / "cancel"
    run = start_cli(tmp_path, "--cancel-file", str(cancel_file))
    cancel_file.touch()
    assert_stopped_cleanly(run, tmp_path, "cancel_file", status="cancelled", exit_code=0)


def test_sigterm_finishes_the_step_checkpoints_and_exits_interrupted_not_cancelled(tmp_path):
    """SIGTERM is what a host going away sends: the run must resume elsewhere, not end as cancelled."""
    run = start_cli(tmp_path)
    run.process.send_signal(signal.SIGTERM)
    assert_stopped_cleanly(run, tmp_path, "sigterm", status="interrupted", exit_code=75)
    assert read_json(tmp_path / "run" / "run_manifest.json")["status"] == "interrupted"


def test_sigterm_after_a_cancel_file_is_a_cancel(tmp_path):
    """A launcher escalating a cancel writes the cancel file, then sends SIGTERM: still a cancel."""
    cancel_file = tmp_path / "cancel"
    run = start_cli(tmp_path, "--cancel-file", str(cancel_file))
    cancel_file.touch()
    run.process.send_signal(signal.SIGTERM)
    assert_stopped_cleanly(run, tmp_path, "cancel_file", status="cancelled", exit_code=0)


def test_a_second_trainer_on_a_busy_run_folder_is_refused_for_now(tmp_path):
    run = start_cli(tmp_path)
    second = CliRun(tmp_path / "cfg.yaml", tmp_path / "data.jsonl", tmp_path / "run")
    assert second.finish() == 75
    error = second.events[-1]
    assert error["event"] == "error" and error["kind"] == "busy" and "being trained into" in error["message"]
    run.process.send_signal(signal.SIGTERM)
    assert run.finish() == 75
