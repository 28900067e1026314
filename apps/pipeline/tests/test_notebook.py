"""The Kaggle notebook: its .ipynb and .py twin are in sync, it runs end to end on a CPU in smoke mode,
and in server mode it pulls a dataset and pushes its run back through the REST API only."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest
from django.conf import settings

NOTEBOOKS = Path(settings.BASE_DIR) / "notebooks"


def test_the_notebook_and_its_py_twin_are_in_sync():
    notebook = jupytext.read(NOTEBOOKS / "kaggle_submission.ipynb")
    assert jupytext.writes(notebook, fmt="py:percent") == (NOTEBOOKS / "kaggle_submission.py").read_text(), (
        "notebooks/kaggle_submission.{ipynb,py} drifted: run `jupytext --sync notebooks/kaggle_submission.ipynb`")


def test_the_notebook_imports_no_django_and_no_apps():
    source = (NOTEBOOKS / "kaggle_submission.py").read_text()
    assert "django" not in source.lower() and "from apps" not in source and "import apps" not in source


def _run(tmp_path, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DJANGO"))}
    clean = {k: v for k, v in clean.items() if k not in ("TUNIXRT_MODELS_DIR", "XLA_FLAGS")}
    return subprocess.run([sys.executable, "kaggle_submission.py"], cwd=NOTEBOOKS, capture_output=True, text=True,
                          timeout=600, env={**clean, "SMOKE": "1", "OUTPUT_DIR": str(tmp_path / "out"),
                                            "TUNIXRT_SRC": str(settings.BASE_DIR), **env})


@pytest.mark.slow
def test_smoke_mode_writes_every_output_file(tmp_path):
    result = _run(tmp_path, TUNIXRT_URL="", TUNIXRT_API_KEY="")
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "out"
    for name in ("metrics.jsonl", "predictions.jsonl", "eval_summary.json", "run_manifest.json"):
        assert (out / name).stat().st_size > 0, name
    assert any(out.glob("run-*/checkpoints/*"))
    assert json.loads((out / "eval_summary.json").read_text())["count"] == 20
    manifest = json.loads((out / "run_manifest.json").read_text())
    # The built-in branch trains the project's best recipe: a learned tokenizer and packed rows.
    assert (manifest["config"]["tokenizer"], manifest["config"]["packing"]) == ("spm", True)
    assert (out / "loss_curve.svg").read_text().startswith("<svg")
    assert json.loads((out / "kaggle_model.json").read_text())["folder"] is None  # no merged model: no Gemma
    # The GRPO stage starts from the SFT run and is evaluated on the same 20 items.
    assert len((out / "grpo_metrics.jsonl").read_text().splitlines()) == 3
    assert json.loads((out / "grpo_eval_summary.json").read_text())["count"] == 20
    (grpo_dir,) = [path for path in out.glob("run-*-grpo-*") if path.is_dir()]
    init_from = json.loads((grpo_dir / "run_config.json").read_text())["init_from"]
    assert init_from["config_hash"] == manifest["config_hash"] and init_from["step"] == 30
    assert "after GRPO" in result.stdout


@pytest.mark.slow
def test_the_tunix_branch_runs_on_a_cpu_with_a_tiny_gemma_and_resumes_in_a_second_session(tmp_path):
    from training.backends.tunix_tiny import write_tiny_model_dir

    gemma = write_tiny_model_dir(tmp_path / "inputs" / "gemma3-tiny", seed=0)
    first = _run(tmp_path, GEMMA="gemma3-tiny", GEMMA_DIR=str(gemma), TUNIXRT_URL="", TUNIXRT_API_KEY="")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    out = tmp_path / "out"
    for name in ("metrics.jsonl", "predictions.jsonl", "eval_summary.json", "run_manifest.json", "loss_curve.svg",
                 "kaggle_model.json", "merged_model/state", "merged_model/model.json", "merged_model/tokenizer.model",
                 "merged_model/load_with_tunix.py"):
        assert (out / name).exists(), name
    manifest_text = (out / "run_manifest.json").read_text()
    manifest = json.loads(manifest_text)
    assert manifest["backend"] == "tunix" and manifest["config"]["lora"]
    assert manifest["model"]["model_dir"] == manifest["config"]["model_dir"] == "gemma3-tiny"  # a name, not a path
    assert len(manifest["model"]["base_weights"]["sha256"]) == 64 and len(manifest["tokenizer"]["sha256"]) == 64
    assert str(tmp_path) not in manifest_text
    assert "Kaggle Model ID: " in first.stdout.splitlines()[-1] and "loaded back with Tunix's Gemma3" in first.stdout
    # The GRPO stage trains with Tunix from the LoRA run and is evaluated on the same items.
    assert len((out / "grpo_metrics.jsonl").read_text().splitlines()) == 3
    (grpo_dir,) = [path for path in out.glob("run-*-grpo-*") if path.is_dir()]
    assert json.loads((grpo_dir / "run_config.json").read_text())["backend"] == "tunix"
    assert "after GRPO" in first.stdout
    # A separate process loads the merged checkpoint with Tunix's own code, from a copy away from everything.
    shutil.copytree(out / "merged_model", tmp_path / "downloaded")
    loaded = subprocess.run([sys.executable, "load_with_tunix.py", "--prompt", "What is 2 + 3?",
                             "--max-new-tokens", "8"], cwd=tmp_path / "downloaded", capture_output=True, text=True,
                            timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert json.loads(loaded.stdout.splitlines()[-1])["prompt"] == "What is 2 + 3?"
    # The next session: /kaggle/working starts empty, the earlier output is attached; nothing is retrained.
    second = _run(tmp_path, GEMMA="gemma3-tiny", GEMMA_DIR=str(gemma), RESUME_FROM=str(out),
                  OUTPUT_DIR=str(tmp_path / "second"))
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-3000:]
    assert "continuing the run of an earlier session" in second.stdout
    resumed = json.loads((tmp_path / "second" / "run_manifest.json").read_text())
    assert resumed["steps_completed"] == manifest["steps_completed"] and resumed["timings"]["steps_this_process"] == 0
    # Nor re-evaluated: the SFT and GRPO checkpoints are the ones the first session judged, on the same items.
    assert second.stdout.count("reusing the evaluation of an earlier session") == 2
    for name in ("eval_summary.json", "grpo_eval_summary.json", "predictions.jsonl"):
        assert (tmp_path / "second" / name).read_text() == (out / name).read_text(), name


def test_on_a_tpu_without_gemma_it_stops_and_says_what_to_attach_and_installs_pinned_wheels(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    result = _run(tmp_path, TUNIXRT_ACCELERATOR="tpu", TUNIXRT_INSTALL="print", TUNIXRT_WHEELS=str(wheels),
                  TUNIXRT_URL="", TUNIXRT_API_KEY="")
    assert result.returncode != 0
    assert "Add input → Models → Gemma 3 → Transformers → gemma-3-1b-it" in result.stderr
    assert not list((tmp_path / "out").glob("run-*"))  # stopped before any training
    install = result.stdout.splitlines()[0]
    for pin in ("jax[tpu]==0.10.2", "jaxlib==0.10.2", "google-tunix==0.1.7", "qwix==0.1.8", "sentencepiece==",
                "safetensors==", "orjson==", "-c "):
        assert pin in install, pin
    assert f"--no-index --find-links {wheels}" in install


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_server_mode_pulls_a_dataset_and_pushes_the_run_back(live_server, trainer, dataset, tmp_path):
    from apps.core.services import api_key_create
    from apps.evaluations.models import Evaluation
    from apps.evaluations.services import eval_set_load
    from apps.runs.models import TrainingRun

    eval_set_load(folder=Path(settings.BASE_DIR) / "datasets" / "eval-v1")
    _, token = api_key_create(user=trainer, name="notebook", scope="write")
    result = _run(tmp_path, TUNIXRT_URL=live_server.url, TUNIXRT_API_KEY=token, DATASET_ID=dataset.pk)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert f"pulled {dataset.pk}" in result.stdout
    run = TrainingRun.objects.get(imported=True)
    assert (run.dataset_version_id, run.created_by, run.steps_completed) == (dataset.pk, trainer, 30)
    evaluation = Evaluation.objects.get(run=run)
    assert evaluation.item_count == 20 and evaluation.eval_set_id == "eval-v1"
    # The server derived the slice (the first 20 items) and labels the outputs as the notebook's.
    assert (evaluation.source, evaluation.section, evaluation.limit) == ("imported", "", 20)
    assert run.artifacts.filter(kind="checkpoint").exists()
    assert "(source: imported)" in result.stdout and "ranks only among imported evaluations" in result.stdout
    assert f"/api/tunix/runs/{run.pk}/evaluate" in result.stdout
