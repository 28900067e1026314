"""`python -m training.checkpoint_check`: a real checkpoint loads (every parameter finite, in the shapes
its run config describes); a folder that only looks like one is refused with a message that names no
server path."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.checkpoint_check import check, main
from training.engine import train
from training.tests.engine_helpers import arithmetic_traces, tiny_config, write_sft_file

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("checked")
    data = write_sft_file(folder / "train.jsonl", arithmetic_traces(16))
    train(tiny_config(max_steps=4, warmup_steps=1, checkpoint_every=4), data, folder / "out")
    return folder / "out"


def test_a_trained_checkpoint_loads(trained):
    result = check(trained, 4)
    assert result["ok"] and result["backend"] == "builtin" and result["parameters"] > 10_000


def _answer(capsys, *argv) -> tuple[int, dict]:
    code = main(list(argv))
    return code, json.loads(capsys.readouterr().out.splitlines()[-1])


@pytest.mark.parametrize("damage", ["junk step", "no run config", "other step", "wrong shapes"])
def test_a_checkpoint_that_does_not_load_is_refused_without_a_server_path(trained, tmp_path, capsys, damage):
    out = tmp_path / "run" / "out"
    shutil.copytree(trained, out)
    step = 4
    if damage == "junk step":
        shutil.rmtree(out / "checkpoints")
        (out / "checkpoints" / "20").mkdir(parents=True)
        (out / "checkpoints" / "20" / "x").write_bytes(b"0123456789abcdef")  # the 16-byte "checkpoint"
        step = 20
    elif damage == "no run config":
        (out / "run_config.json").unlink()
    elif damage == "other step":
        step = 3
    else:
        config = json.loads((out / "run_config.json").read_text())
        config["model"]["d_model"] *= 2
        (out / "run_config.json").write_text(json.dumps(config))
    code, answer = _answer(capsys, "--out", str(out), "--step", str(step))
    assert code == 2 and answer["ok"] is False and answer["error"]
    assert str(tmp_path) not in answer["error"]


def test_non_finite_parameters_are_refused(monkeypatch, trained):
    import training.checkpoint_check as module

    monkeypatch.setattr(module, "_builtin_params", lambda out, step: {"w": np.array([1.0, np.nan])})
    with pytest.raises(ValueError, match="non-finite"):
        check(trained, 4)


def test_it_runs_as_a_module_and_prints_one_json_line(trained):
    result = subprocess.run([sys.executable, "-m", "training.checkpoint_check", "--out", str(trained), "--step", "4"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[-1])["ok"] is True
