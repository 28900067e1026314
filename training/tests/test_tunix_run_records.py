"""A Tunix run stands on its own: it records the sha256 of its base weights and tokenizer and names their
folder without any machine path; evaluating it (training.evaluate on the run folder) loads exactly those
weights and refuses changed ones; its merged checkpoint computes what the LoRA model does and a separate
process loads it with Tunix's own Gemma code and generates."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tunix")
pytest.importorskip("qwix")

from safetensors.numpy import save_file  # noqa: E402

from training import base_weights  # noqa: E402
from training.backends import load_with_tunix, tunix_export, tunix_tiny  # noqa: E402
from training.backends.tunix_generate import load_for_generation  # noqa: E402
from training.engine import train  # noqa: E402
from training.evaluate import evaluate  # noqa: E402
from training.run_files import RunMismatchError  # noqa: E402
from training.tests import tunix_helpers  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
GEMMA = "gemma-tiny-it"  # the folder's name inside the models folder
CONFIG = {"backend": "tunix", "model": "gemma3-tiny", "max_steps": 4, "batch_size": 4, "learning_rate": 3e-3,
          "warmup_steps": 1, "max_seq_len": 48, "checkpoint_every": 0, "seed": 0, "lora": {"rank": 4, "alpha": 8.0}}
ITEMS = [{"id": f"e{n}", "prompt": f"What is {n} + 1?", "expected_answer": str(n + 1), "category": "addition",
          "difficulty": "easy", "section": "in_distribution"} for n in range(3)]


@pytest.fixture(scope="module", autouse=True)
def fast_compilation(tmp_path_factory):
    with tunix_helpers.fast_compilation(str(tmp_path_factory.mktemp("jax_cache"))):
        yield


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    tunix_tiny.write_tiny_model_dir(root / GEMMA, seed=0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(base_weights.MODELS_DIR_ENV, str(root))
        yield root


@pytest.fixture(scope="module")
def run(models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("lora")
    data = folder / "train.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in tunix_helpers.arithmetic_rows()), encoding="utf-8")
    result = train({**CONFIG, "model_dir": str(models / GEMMA)}, data, folder / "out", peak_flops=1e11)
    assert result.status == "completed"
    return folder / "out"


def test_the_run_names_its_base_weights_by_name_and_records_their_hashes(run, models):
    run_config = json.loads((run / "run_config.json").read_text())
    manifest = json.loads((run / "run_manifest.json").read_text())
    assert run_config["model_dir"] == GEMMA and run_config["config"]["model_dir"] == GEMMA
    assert manifest["config"]["model_dir"] == GEMMA and manifest["model"]["model_dir"] == GEMMA
    weights = models / GEMMA / "model.safetensors"
    file_sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    expected = hashlib.sha256(f"{file_sha}  model.safetensors\n".encode()).hexdigest()
    assert run_config["base_weights_sha256"] == run_config["base_weights"]["sha256"] == expected
    assert manifest["model"]["base_weights"]["files"] == [
        {"name": "model.safetensors", "sha256": file_sha, "size_bytes": weights.stat().st_size}]
    tokenizer_sha = hashlib.sha256((models / GEMMA / "tokenizer.model").read_bytes()).hexdigest()
    assert run_config["tokenizer"]["sha256"] == manifest["tokenizer"]["sha256"] == tokenizer_sha
    for text in ((run / "run_config.json").read_text(), (run / "run_manifest.json").read_text()):
        assert str(models) not in text and str(run.parent) not in text and "/kaggle" not in text


def test_training_evaluate_runs_on_a_tunix_run_folder(run):
    report = evaluate(run, ITEMS, max_new_tokens=8, batch_size=2)
    assert [p["id"] for p in report["predictions"]] == ["e0", "e1", "e2"]
    assert all(isinstance(p["output"], str) and p["format_ok"] in (True, False) for p in report["predictions"])
    assert report["summary"]["count"] == 3 and report["summary"]["generation"]["max_new_tokens"] == 8


def _other_models_root(tmp_path: Path, change: str) -> Path:
    root = tmp_path / "models"
    shutil.copytree(Path(base_weights.models_root()) / GEMMA, root / GEMMA)
    if change == "weights":  # same names and shapes, other numbers: loads fine, means something else
        save_file(tunix_tiny.random_hf_weights("gemma3-tiny", seed=1), str(root / GEMMA / "model.safetensors"))
    else:
        tunix_tiny.train_tiny_tokenizer(root / GEMMA / "tokenizer.model", seed=1)
    return root


@pytest.mark.parametrize("change", ["weights", "tokenizer"])
def test_evaluating_over_changed_base_files_is_refused(run, tmp_path, monkeypatch, change):
    monkeypatch.setenv(base_weights.MODELS_DIR_ENV, str(_other_models_root(tmp_path, change)))
    with pytest.raises(base_weights.BaseWeightsChanged, match=f"{GEMMA}.*changed since this run"):
        evaluate(run, ITEMS[:1], max_new_tokens=4)
    cli = subprocess.run([sys.executable, "-m", "training", "evaluate", "--out", str(run), "--eval", "eval-v1",
                          "--limit", "1", "--max-new-tokens", "4"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert cli.returncode == 2 and "changed since this run" in cli.stderr, cli.stderr[-2000:]


def test_resuming_over_changed_weights_is_refused(run, models, tmp_path):
    other = _other_models_root(tmp_path, "weights")
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    data = run.parent / "train.jsonl"
    with pytest.raises(RunMismatchError, match="base_weights_sha256"):
        train({**CONFIG, "model_dir": str(other / GEMMA)}, data, copy, peak_flops=1e11)


def test_weights_that_are_nowhere_to_be_found_say_where_they_were_looked_for(run, monkeypatch):
    monkeypatch.delenv(base_weights.MODELS_DIR_ENV)
    with pytest.raises(base_weights.BaseWeightsMissing, match=f"'{GEMMA}'.*set TUNIXRT_MODELS_DIR"):
        load_for_generation(run)


# --- the merged checkpoint ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def merged(run, tmp_path_factory):
    return tunix_export.export_merged(run, tmp_path_factory.mktemp("export") / "merged_model")


def test_the_merged_checkpoint_computes_what_the_lora_model_does(run, merged):
    assert sorted(p.name for p in merged.iterdir()) == ["load_with_tunix.py", "model.json", "state",
                                                        "tokenizer.model"]
    info = tunix_export.describe(merged)
    assert info["lora_merged"] == CONFIG["lora"] and info["source_step"] == 4 and info["kwargs"]["num_layers"] == 2
    lora_model, _ = load_for_generation(run)
    model, _, _ = load_with_tunix.load(merged)
    assert type(model).__name__ == "Gemma3" and not hasattr(model.layers[0].attn.q_einsum, "w_lora_a")
    tokens = np.array([[2, 10, 11, 12, 13, 14]], dtype=np.int32)
    positions = np.arange(6, dtype=np.int32)[None]
    mask = np.tril(np.ones((1, 6, 6), dtype=bool))
    expected = np.asarray(lora_model(tokens, positions, None, mask)[0])
    np.testing.assert_allclose(np.asarray(model(tokens, positions, None, mask)[0]), expected, atol=1e-5)
    base = load_for_generation(Path(base_weights.models_root()) / GEMMA)[0]
    assert not np.allclose(np.asarray(base(tokens, positions, None, mask)[0]), expected)  # adapters were merged


def test_a_separate_process_loads_the_merged_checkpoint_with_tunix_and_generates(merged, tmp_path):
    moved = tmp_path / "downloaded"
    shutil.copytree(merged, moved)  # stands alone: no run folder, no base weights, no tunix-rt
    result = subprocess.run([sys.executable, str(moved / "load_with_tunix.py"), "--prompt", "What is 2 + 3?",
                             "--max-new-tokens", "6"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.splitlines()[-1])
    assert answer["prompt"] == "What is 2 + 3?" and isinstance(answer["output"], str)
