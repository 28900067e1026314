"""A GRPO run from a tunix (LoRA Gemma) run through the product: the request is planned on the parent's
backend, the launcher stages the parent's checkpoint, Tunix's GRPOLearner trains with the judges as reward,
and the run's metrics, completions, checkpoints and evaluation are served like the builtin GRPO's."""

import json
import shutil

import pytest
from django.utils import timezone

from apps.core.testing import key_client
from apps.evaluations.launcher import evaluation_launch
from apps.evaluations.models import Evaluation
from apps.registry.tests.test_base_weights import CONFIG, GEMMA, lora_run_out  # noqa: F401 - fixtures
from apps.runs.models import RunArtifact, RunMetric, TrainingRun
from apps.runs.storage import RunPaths, record_artifacts
from apps.runs.tests.test_grpo_runs import launch

pytest.importorskip("tunix")

GRPO = {"max_steps": 2, "prompts_per_step": 2, "group_size": 2, "max_new_tokens": 12, "learning_rate": 1e-3,
        "checkpoint_every": 0, "sample_every": 1, "sample_count": 2, "seed": 0}


@pytest.fixture
def tunix_parent(lora_run_out, dataset, trainer, settings):  # noqa: F811
    shutil.copytree(lora_run_out / "models" / GEMMA, settings.MODELS_DIR / GEMMA)
    recorded = json.loads((lora_run_out / "out" / "run_config.json").read_text())
    run = TrainingRun.objects.create(
        dataset_version=dataset, dataset_content_hash=dataset.content_hash, config={**CONFIG, "model_dir": GEMMA},
        config_hash=recorded["config_hash"], backend="tunix", model="gemma3-tiny", seed=0, max_steps=2,
        steps_completed=2, status="completed", attempt=1, started_at=timezone.now(), finished_at=timezone.now(),
        created_by=trainer, auto_evaluate=False)
    shutil.copytree(lora_run_out / "out", RunPaths.of(run).out)
    record_artifacts(run, RunPaths.of(run))
    return run


@pytest.mark.django_db
def test_a_grpo_run_from_a_tunix_run_trains_with_tunix_and_is_served_and_evaluated(trainer, tunix_parent, small_set):
    client = key_client(trainer)
    body = {"dataset_id": tunix_parent.dataset_version_id, "algorithm": "grpo", "config": GRPO,
            "init_from": {"run": str(tunix_parent.pk)}, "reward": {"judges": {"answer_exact": 1.0, "format": 0.5}},
            "auto_evaluate": False}
    plan = client.post("/api/tunix/run", {**body, "dry_run": True}, format="json")
    assert plan.status_code == 200, plan.content
    assert (plan.json()["backend"], plan.json()["model"]) == ("tunix", "gemma3-tiny")
    response = client.post("/api/tunix/run", {**body, "dry_run": False}, format="json")
    assert response.status_code == 202, response.content
    run = launch(TrainingRun.objects.get(pk=response.json()["id"]))
    assert (run.backend, run.algorithm, run.steps_completed, run.init_run_id) == ("tunix", "grpo", 2, tunix_parent.pk)
    rows = list(RunMetric.objects.filter(run=run).order_by("step"))
    assert [row.step for row in rows] == [1, 2]
    assert all({"reward_mean", "reward_answer_exact_mean", "kl", "zero_signal_fraction"} <= set(row.values)
               for row in rows)
    names = set(RunArtifact.objects.filter(run=run).values_list("name", flat=True))
    assert any(name.startswith("checkpoints/2/") for name in names) and "samples.jsonl" in names
    manifest = json.loads((RunPaths.of(run).out / "run_manifest.json").read_text())
    assert manifest["backend"] == "tunix" and manifest["config_hash"] == run.config_hash
    page = client.get(f"/api/tunix/runs/{run.pk}/completions").json()
    assert page["count"] == 4 and set(page["results"][0]["judges"]) == {"answer_exact", "format"}

    evaluation = client.post(f"/api/tunix/runs/{run.pk}/evaluate", {"eval_set": small_set.pk}, format="json")
    assert evaluation.status_code == 202, evaluation.content
    status = evaluation_launch(evaluation_id=evaluation.json()["id"])
    assert status == "completed", Evaluation.objects.get(pk=evaluation.json()["id"]).error
    board = client.get(f"/api/tunix/evaluations?eval_set={small_set.pk}").json()
    assert str(run.pk) in json.dumps(board)
