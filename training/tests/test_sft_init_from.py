"""An SFT run continued from another builtin run's weights (`init_from`): it starts where its parent
ended, records where that was, resumes exactly, and refuses a parent whose model or tokenizer it cannot
load into the model it builds."""

import json

import pytest

from training.engine import train
from training.hooks import TrainHooks
from training.init_from import InitRunError
from training.run_files import read_json
from training.tests.engine_helpers import arithmetic_traces, run_losses, tiny_config, write_sft_file


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    root = tmp_path_factory.mktemp("init-from")
    data = write_sft_file(root / "data.jsonl", arithmetic_traces(60, seed=5))
    train(tiny_config(max_steps=40, checkpoint_every=20), data, root / "parent", peak_flops=1e11)
    return root / "parent", data


def _child_config(**overrides):
    return tiny_config(max_steps=20, checkpoint_every=10, learning_rate=1e-3, **overrides)


def test_a_continued_run_starts_from_its_parents_weights_and_records_them(parent, tmp_path):
    parent_dir, data = parent
    scratch = train(_child_config(), data, tmp_path / "scratch", peak_flops=1e11)
    child = train(_child_config(), data, tmp_path / "child", peak_flops=1e11, init_dir=parent_dir, init_step=40)

    parent_last = run_losses(parent_dir)[40]
    first_scratch, first_child = run_losses(tmp_path / "scratch")[1], run_losses(tmp_path / "child")[1]
    assert first_child < first_scratch * 0.75  # the parent's weights, not a fresh init
    assert first_child < parent_last * 1.5  # and roughly where the parent left off
    recorded = read_json(tmp_path / "child" / "run_config.json")["init_from"]
    assert recorded["folder"] == "parent" and recorded["step"] == 40 and recorded["algorithm"] == "sft"
    assert recorded["config_hash"] == read_json(parent_dir / "run_config.json")["config_hash"]
    manifest = json.loads((tmp_path / "child" / "run_manifest.json").read_text())
    assert manifest["init_from"] == recorded
    # The same config from other weights is another run.
    assert child.manifest["config_hash"] != scratch.manifest["config_hash"]


class CrashAt(TrainHooks):
    def __init__(self, step: int):
        self.step = step

    def on_step(self, metrics: dict) -> None:
        if metrics["step"] == self.step:
            raise RuntimeError("the host went away")


def test_a_continued_run_resumes_to_the_same_losses_with_the_step_it_recorded(parent, tmp_path):
    parent_dir, data = parent
    train(_child_config(), data, tmp_path / "whole", peak_flops=1e11, init_dir=parent_dir, init_step=20)
    with pytest.raises(RuntimeError, match="went away"):
        train(_child_config(), data, tmp_path / "crashed", CrashAt(13), peak_flops=1e11, init_dir=parent_dir,
              init_step=20)
    # The retry names no step: the run reads back the one it started from (the parent's latest is 40).
    train(_child_config(), data, tmp_path / "crashed", peak_flops=1e11, init_dir=parent_dir)
    assert run_losses(tmp_path / "crashed") == run_losses(tmp_path / "whole")
    assert read_json(tmp_path / "crashed" / "run_config.json")["init_from"]["step"] == 20


@pytest.mark.parametrize("overrides, problem", [
    ({"tokenizer": "spm", "spm_vocab_size": 512}, "tokenizer"),
    ({"model": "small"}, "another model shape"),
])
def test_a_parent_of_another_model_or_tokenizer_is_refused_before_anything_is_written(parent, tmp_path, overrides,
                                                                                     problem):
    parent_dir, data = parent
    with pytest.raises(InitRunError, match=problem):
        train(_child_config(**overrides), data, tmp_path / "child", init_dir=parent_dir)
    assert not (tmp_path / "child").exists()


def test_a_folder_that_is_no_run_is_refused(parent, tmp_path):
    _, data = parent
    (tmp_path / "empty").mkdir()
    with pytest.raises(InitRunError, match="Cannot start from"):
        train(_child_config(), data, tmp_path / "child", init_dir=tmp_path / "empty")
