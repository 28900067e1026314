"""The Kaggle notebook: its .ipynb and .py twin are in sync, it runs end to end on a CPU in smoke mode,
and in server mode it pulls a dataset and pushes its run back through the REST API only."""

import json
import os
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
    assert any((out / "run" / "checkpoints").iterdir())
    assert json.loads((out / "eval_summary.json").read_text())["count"] == 20


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
