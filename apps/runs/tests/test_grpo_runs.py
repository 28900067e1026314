"""GRPO runs in the product: requests validated whole before anything is queued, the launcher's GRPO
branch (the parent's checkpoint staged beside the run, the split's prompts exported), its metrics and
sampled completions through the API, and an SFT → version → GRPO chain that lands on the leaderboard
with lineage back to the traces."""

import json

import pytest

from apps.core.errors import Invalid
from apps.core.testing import key_client
from apps.datasets.services import dataset_version_build
from apps.datasets.spec import parse_build_request
from apps.evaluations.launcher import evaluation_launch
from apps.registry.models import RegisteredModel
from apps.registry.selectors import version_lineage
from apps.registry.services import model_version_promote
from apps.runs import storage
from apps.runs.launcher import training_run_launch
from apps.runs.models import RunArtifact, RunLogLine, RunMetric, TrainingRun
from apps.runs.services import init_source, training_run_plan, training_run_submit
from apps.runs.testing import tiny_config
from apps.traces.models import Trace
from apps.traces.services import trace_batch_create
from training.grpo.config import SAMPLES_FILE
from training.judges import JUDGE_VERSIONS
from training.tests.engine_helpers import arithmetic_trace

GRPO = {"max_steps": 4, "prompts_per_step": 2, "group_size": 4, "max_new_tokens": 32, "learning_rate": 1e-3,
        "checkpoint_every": 2, "sample_every": 1, "sample_count": 4, "seed": 0}


def grpo_body(parent, **overrides) -> dict:
    return {"dataset_id": parent.dataset_version_id, "algorithm": "grpo", "config": dict(GRPO),
            "init_from": {"run": str(parent.pk)}, "reward": {"judges": {"answer_exact": 1.0, "format": 0.5}},
            "dry_run": False, "auto_evaluate": False, **overrides}


def launch(run) -> TrainingRun:
    status = training_run_launch(run_id=run.pk)
    run.refresh_from_db()
    assert status == "completed", (run.error, list(RunLogLine.objects.filter(run=run).values_list("text", flat=True)))
    return run


# --- requests --------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_dry_run_reports_the_parent_the_reward_and_the_cost(trainer, completed_run):
    response = key_client(trainer).post("/api/tunix/run", {**grpo_body(completed_run), "dry_run": True},
                                        format="json")
    assert response.status_code == 200, response.content
    plan = response.json()
    assert plan["algorithm"] == "grpo"
    assert plan["init_from"] | {"run": str(completed_run.pk), "step": 30, "model": "tiny", "backend": "builtin"} \
        == plan["init_from"]
    assert plan["config"]["reward"] == {"judges": {"answer_exact": 1.0, "format": 0.5},
                                        "versions": {"answer_exact": JUDGE_VERSIONS["answer_exact"],
                                                     "format": JUDGE_VERSIONS["format"]}}
    assert plan["estimate"]["completions_per_step"] == 8
    assert not TrainingRun.objects.exclude(pk=completed_run.pk).exists()


def _bad(body_change, parent):
    body = grpo_body(parent)
    body_change(body)
    return body


BAD_REQUESTS = [
    (lambda b: b["config"].update(group_size=1), "config.group_size"),
    (lambda b: b["config"].update(bogus=1), "config.bogus"),
    (lambda b: b["config"].update(temperature=0), "config.temperature"),
    (lambda b: b.update(reward={"judges": {"answer_exact": 1.0, "vibes": 1.0}}), "reward.judges.vibes"),
    (lambda b: b.update(reward={"judges": {"format": -1.0}}), "reward.judges.format"),
    (lambda b: b.update(reward={"judges": {"format": "1"}}), "reward.judges.format"),
    (lambda b: b.update(reward={"judges": {"format": 0.0}}), "reward.judges"),
    (lambda b: b.update(reward={"judges": {"format": 1.0}, "versions": {"format": "0"}}), "reward.versions.format"),
    (lambda b: b["config"].update(reward={"judges": {"format": 1.0}}), "reward"),
    (lambda b: b.pop("init_from"), "init_from"),
    (lambda b: b.update(init_from={}), "init_from"),
    (lambda b: b.update(init_from={"run": "00000000-0000-0000-0000-000000000000"}), "init_from.run"),
    (lambda b: b.update(init_from={"run": "not-a-run"}), "init_from.run"),
    (lambda b: b["init_from"].update(step=7), "init_from.step"),
    (lambda b: b.update(init_from={"version": "00000000-0000-0000-0000-000000000000"}), "init_from.version"),
    (lambda b: b["init_from"].update(version="x"), "init_from"),
    (lambda b: b.update(algorithm="ppo"), "algorithm"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "field"), BAD_REQUESTS)
def test_a_bad_grpo_request_is_a_400_naming_the_field_and_nothing_is_queued(trainer, completed_run, change, field):
    response = key_client(trainer).post("/api/tunix/run", _bad(change, completed_run), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["detail"], response.json()
    assert not TrainingRun.objects.exclude(pk=completed_run.pk).exists()


@pytest.mark.django_db
def test_a_parent_that_cannot_be_started_from_is_refused(trainer, completed_run):
    client = key_client(trainer)
    TrainingRun.objects.filter(pk=completed_run.pk).update(backend="tunix")
    sft = {"dataset_id": completed_run.dataset_version_id, "config": tiny_config(), "dry_run": False,
           "init_from": {"run": str(completed_run.pk)}}
    response = client.post("/api/tunix/run", sft, format="json")
    assert response.status_code == 400 and "tunix run" in response.json()["detail"]["init_from.run"][0]
    TrainingRun.objects.filter(pk=completed_run.pk).update(backend="builtin", status="failed")
    response = client.post("/api/tunix/run", grpo_body(completed_run), format="json")
    assert response.status_code == 400 and "failed" in response.json()["detail"]["init_from.run"][0]
    assert not TrainingRun.objects.exclude(pk=completed_run.pk).exists()


@pytest.mark.django_db
def test_sft_takes_no_reward_and_continues_only_weights_that_fit_its_model(trainer, completed_run):
    client = key_client(trainer)
    sft = {"dataset_id": completed_run.dataset_version_id, "config": tiny_config(), "dry_run": True}
    response = client.post("/api/tunix/run", {**sft, "reward": {"judges": {"format": 1.0}}}, format="json")
    assert response.status_code == 400 and "reward" in response.json()["detail"]
    continued = {**sft, "init_from": {"run": str(completed_run.pk)}}
    response = client.post("/api/tunix/run", continued, format="json")
    assert response.status_code == 200, response.content
    plan = response.json()
    assert (plan["algorithm"], plan["init_from"]["run"], plan["init_from"]["step"]) == (
        "sft", str(completed_run.pk), 30)
    scratch = client.post("/api/tunix/run", sft, format="json").json()
    assert plan["config_hash"] != scratch["config_hash"]  # the same config from other weights is another run
    for change, field in [({"model": "small"}, "config.model"),
                          ({"tokenizer": "spm", "spm_vocab_size": 512}, "config.tokenizer")]:
        response = client.post("/api/tunix/run", {**continued, "config": {**tiny_config(), **change}}, format="json")
        assert response.status_code == 400 and field in response.json()["detail"], response.content
    assert not TrainingRun.objects.exclude(pk=completed_run.pk).exists()


@pytest.mark.django_db
def test_an_sft_run_continues_from_its_parents_checkpoint(trainer, completed_run, trained_out):
    parent_hash = json.loads((trained_out / "run_config.json").read_text())["config_hash"]
    TrainingRun.objects.filter(pk=completed_run.pk).update(config_hash=parent_hash)
    body = {"dataset_id": completed_run.dataset_version_id, "config": tiny_config(max_steps=5, checkpoint_every=5),
            "init_from": {"run": str(completed_run.pk)}, "dry_run": False, "auto_evaluate": False}
    plan, _ = training_run_plan(data=body, user=trainer)
    run = launch(training_run_submit(plan=plan, user=trainer))
    assert (run.algorithm, run.init_run_id, run.init_step) == ("sft", completed_run.pk, 30)
    first = RunMetric.objects.get(run=run, step=1).loss
    parent_first = next(json.loads(line) for line in (trained_out / "metrics.jsonl").open())["loss"]
    assert first < parent_first * 0.75  # the parent's weights, not a fresh start
    manifest = json.loads((storage.RunPaths.of(run).out / "run_manifest.json").read_text())
    assert manifest["init_from"]["step"] == 30 and manifest["init_from"]["config_hash"] == parent_hash
    # The trainer's identity of the run is the one the server stored: its config, its parent's hash and step.
    assert manifest["config_hash"] == run.config_hash != plan.config.config_hash()


@pytest.mark.django_db
def test_a_run_outside_the_callers_reach_is_no_run(contractor, trainer, completed_run, owner):
    """The parent is looked up among the runs the caller may see: another's run is named as missing."""
    TrainingRun.objects.filter(pk=completed_run.pk).update(created_by=owner)
    with pytest.raises(Invalid) as refused:
        init_source(user=contractor, init_from={"run": str(completed_run.pk)})
    assert refused.value.detail == {"init_from.run": [f"No training run {str(completed_run.pk)!r}."]}
    assert init_source(user=trainer, init_from={"run": str(completed_run.pk)}).run == completed_run


# --- the launcher --------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_grpo_run_from_a_run_completes_with_metrics_completions_and_artifacts(trainer, completed_run):
    plan, _ = training_run_plan(data=grpo_body(completed_run), user=trainer)
    run = launch(training_run_submit(plan=plan, user=trainer))
    assert (run.algorithm, run.backend, run.model, run.init_run_id, run.init_step) == (
        "grpo", "builtin", "tiny", completed_run.pk, 30)
    assert run.steps_completed == 4
    rows = list(RunMetric.objects.filter(run=run).order_by("step"))
    assert [row.step for row in rows] == [1, 2, 3, 4]
    for key in ("reward_mean", "reward_std", "reward_answer_exact_mean", "reward_format_mean", "kl",
                "zero_signal_fraction", "completion_length_mean", "completion_length_max", "truncated_fraction",
                "clip_fraction", "entropy", "sample_seconds", "update_seconds"):
        assert all(key in row.values for row in rows), key
    assert all(row.loss is not None and row.grad_norm is not None for row in rows)
    names = set(RunArtifact.objects.filter(run=run).values_list("name", flat=True))
    assert {SAMPLES_FILE, "run_manifest.json", "run_config.json"} <= names
    assert any(name.startswith("checkpoints/4/") for name in names)
    # The parent's checkpoint was copied beside the run, not read from the parent's folder.
    assert (storage.RunPaths.of(run).init / "checkpoints" / "30").is_dir()

    client = key_client(trainer)
    metrics = client.get(f"/api/tunix/runs/{run.pk}/metrics").json()
    assert metrics["step"] == [1, 2, 3, 4] and len(metrics["reward_mean"]) == 4
    page = client.get(f"/api/tunix/runs/{run.pk}/completions?limit=5").json()
    assert page["count"] == 16 and len(page["results"]) == 5
    first = page["results"][0]
    assert first["step"] == 4 and set(first["judges"]) == {"answer_exact", "format"}
    assert set(first) >= {"prompt", "expected_answer", "completion", "reward", "advantage", "stopped"}
    failed = client.get(f"/api/tunix/runs/{run.pk}/completions?failed=format&limit=500").json()["results"]
    assert all(row["judges"]["format"] == 0.0 for row in failed)
    rewarded = client.get(f"/api/tunix/runs/{run.pk}/completions?min_reward=0.5&limit=500").json()["results"]
    assert all(row["reward"] >= 0.5 for row in rewarded)
    assert client.get(f"/api/tunix/runs/{run.pk}/completions?failed=vibes").status_code == 400
    assert client.get(f"/api/tunix/runs/{run.pk}/completions?min_reward=2&max_reward=1").status_code == 400
    detail = client.get(f"/api/tunix/runs/{run.pk}").json()
    assert detail["algorithm"] == "grpo" and detail["init_from"]["run"] == str(completed_run.pk)
    assert detail["links"]["completions"].endswith("/completions")


@pytest.mark.django_db
def test_the_run_page_charts_rewards_and_lists_completions(superuser, trainer, completed_run, client):
    plan, _ = training_run_plan(data=grpo_body(completed_run, config={**GRPO, "max_steps": 2}), user=trainer)
    run = launch(training_run_submit(plan=plan, user=trainer))
    client.force_login(superuser)
    page = client.get(f"/admin/runs/trainingrun/{run.pk}/change/").content.decode()
    assert "reward (weighted total) by step" in page and "KL by step" in page and "seconds per step" in page
    assert "Sampled completions (8)" in page and f"run {str(completed_run.pk)[:8]}</a> at step 30" in page
    failed = client.get(f"/admin/runs/trainingrun/{run.pk}/change/?failed=format").content.decode()
    assert "where format failed" in failed


@pytest.mark.django_db
def test_the_admin_starts_a_grpo_run_after_its_plan(superuser, completed_run, client):
    client.force_login(superuser)
    form = {"dataset": completed_run.dataset_version_id, "parent_run": str(completed_run.pk), "parent_version": "",
            "max_steps": 3, "prompts_per_step": 2, "group_size": 4, "max_new_tokens": 32, "temperature": 1.0,
            "learning_rate": 1e-4, "beta": 0.04, "weight_answer_exact": 1.0, "weight_format": 0.5,
            "weight_reasoning_checks": 0, "checkpoint_every": 0, "seed": 0}
    checked = client.post("/admin/runs/trainingrun/start-grpo/", {**form, "check": "1"}).content.decode()
    assert "starts from" in checked and "completions per step" in checked
    assert not TrainingRun.objects.exclude(pk=completed_run.pk).exists()
    client.post("/admin/runs/trainingrun/start-grpo/", {**form, "start": "1"})
    run = TrainingRun.objects.exclude(pk=completed_run.pk).get()
    assert (run.algorithm, run.init_run_id, run.config["reward"]["judges"]) == (
        "grpo", completed_run.pk, {"answer_exact": 1.0, "format": 0.5})


@pytest.mark.django_db
def test_the_admin_continues_a_run_after_its_plan(superuser, completed_run, client):
    client.force_login(superuser)
    form = {"dataset": completed_run.dataset_version_id, "parent_run": str(completed_run.pk), "parent_version": "",
            "model": "tiny", "tokenizer": "byte", "max_steps": 5, "batch_size": 4, "learning_rate": 1e-3,
            "warmup_steps": 1, "max_seq_len": 96, "checkpoint_every": 5, "seed": 0}
    checked = client.post("/admin/runs/trainingrun/start/", {**form, "check": "1"}).content.decode()
    assert "continues" in checked and f"run {str(completed_run.pk)[:8]} (sft, tiny) at step 30" in checked
    refused = client.post("/admin/runs/trainingrun/start/", {**form, "tokenizer": "spm", "check": "1"})
    assert "keeps that tokenizer" in refused.content.decode()
    client.post("/admin/runs/trainingrun/start/", {**form, "start": "1"})
    run = TrainingRun.objects.exclude(pk=completed_run.pk).get()
    assert (run.algorithm, run.init_run_id, run.init_step) == ("sft", completed_run.pk, 30)


# --- the chain -----------------------------------------------------------------------------------

@pytest.fixture
def additions(db):
    """25 single-digit additions: the tiny model learns the format from them in 60 steps."""
    trace_batch_create(items=[arithmetic_trace(a, b) for a in range(5) for b in range(5)])
    Trace.objects.update(status="approved")
    version, _ = dataset_version_build(spec=parse_build_request(
        {"dataset_name": "additions", "dataset_version": "v1", "seed": 1, "split": {"train": 1.0}}))
    return version


@pytest.mark.django_db
def test_sft_then_grpo_from_its_version_raises_the_reward_ranks_and_walks_back_to_the_traces(
        trainer, additions, small_set):
    client = key_client(trainer)
    sft = client.post("/api/tunix/run", {
        "dataset_id": additions.pk, "dry_run": False, "auto_evaluate": False,
        "config": tiny_config(max_steps=60, batch_size=8, checkpoint_every=0, max_seq_len=96, learning_rate=1e-2,
                              warmup_steps=5)}, format="json")
    assert sft.status_code == 202, sft.content
    sft_run = launch(TrainingRun.objects.get(pk=sft.json()["id"]))
    version, _ = model_version_promote(model=RegisteredModel.objects.create(name="adder"),
                                       data={"run_id": str(sft_run.pk)})

    response = client.post("/api/tunix/run", {
        "dataset_id": additions.pk, "algorithm": "grpo", "init_from": {"version": str(version.pk)},
        "reward": {"judges": {"format": 1.0}}, "dry_run": False, "auto_evaluate": False,
        "config": {"max_steps": 20, "prompts_per_step": 4, "group_size": 8, "max_new_tokens": 64,
                   "learning_rate": 1e-3, "temperature": 1.0, "checkpoint_every": 0, "sample_every": 5, "seed": 0}},
        format="json")
    assert response.status_code == 202, response.content
    grpo = launch(TrainingRun.objects.get(pk=response.json()["id"]))
    assert (grpo.init_run_id, grpo.init_step, grpo.init_from["version"]) == (sft_run.pk, 60, str(version.pk))
    rewards = [row.values["reward_mean"] for row in RunMetric.objects.filter(run=grpo).order_by("step")]
    assert len(rewards) == 20
    # The direction, at a fixed seed (the margin is left out: one outlier group moves a 5-step mean by 0.08).
    assert sum(rewards[-5:]) / 5 > sum(rewards[:5]) / 5, rewards
    manifest = json.loads((storage.RunPaths.of(grpo).out / "run_manifest.json").read_text())
    assert manifest["config_hash"] == grpo.config_hash  # the server and the trainer name the run alike

    evaluation = client.post(f"/api/tunix/runs/{grpo.pk}/evaluate", {"eval_set": small_set.pk}, format="json")
    assert evaluation.status_code == 202, evaluation.content
    assert evaluation_launch(evaluation_id=evaluation.json()["id"]) == "completed"
    board = client.get(f"/api/tunix/evaluations?eval_set={small_set.pk}").json()
    assert str(grpo.pk) in json.dumps(board)

    grpo_version, _ = model_version_promote(model=version.model, data={"run_id": str(grpo.pk)})
    lineage = version_lineage(grpo_version, user=trainer)
    assert lineage["run"]["algorithm"] == "grpo" and lineage["run"]["init_from"]["version"] == str(version.pk)
    assert [(a["run"], a["algorithm"], a["checkpoint_step"], a["model_version"]) for a in lineage["ancestors"]] == [
        (sft_run.pk, "sft", 60, str(version.pk))]
    assert lineage["ancestors"][0]["dataset_version"]["id"] == additions.pk
    parent = version_lineage(version, user=trainer)
    assert parent["traces"]["count"] == 25 and parent["ancestors"] == []
