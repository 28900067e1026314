"""POST /api/tunix/runs/import: a run trained elsewhere with its metrics, evaluation and checkpoint,
validated and stored all or nothing; outputs are judged by this server."""

import io
import json
import tarfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.testing import key_client
from apps.evaluations.models import Evaluation, Prediction
from apps.runs.models import RunArtifact, RunMetric, TrainingRun


def _tar(files: dict, *, prefix="out", gz=True) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{prefix}/{name}" if prefix else name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _parts(dataset, small_set, **overrides):
    run = {"dataset_id": dataset.pk, "dataset_content_hash": dataset.content_hash, "steps_completed": 20,
           "final_loss": 0.5, "config": {"backend": "builtin", "model": "tiny", "max_steps": 20, "max_seq_len": 128}}
    items = list(small_set.items.order_by("position"))
    predictions = [{"id": items[0].item_id, "output": f"<reasoning>ok</reasoning><answer>{items[0].expected_answer}"
                    "</answer>", "tokens": 12},
                   {"id": items[1].item_id, "output": "no idea"}]
    parts = {
        "run": json.dumps(run),
        "metrics": SimpleUploadedFile("metrics.jsonl", b"".join(
            json.dumps({"step": s, "loss": 1.0 / s, "lr": 0.001}).encode() + b"\n" for s in range(1, 21))),
        "evaluation": json.dumps({"eval_set": small_set.pk}),
        "predictions": SimpleUploadedFile("predictions.jsonl", "".join(json.dumps(p) + "\n" for p in predictions)
                                          .encode()),
        "archive": SimpleUploadedFile("out.tar.gz", _tar({"run_config.json": b"{}", "checkpoints/20/x": b"w"})),
    }
    parts.update(overrides)
    return parts


def _post(user, parts):
    return key_client(user).post("/api/tunix/runs/import", parts, format="multipart")


def _stored():
    return (TrainingRun.objects.count(), RunMetric.objects.count(), Evaluation.objects.count(),
            Prediction.objects.count())


@pytest.mark.django_db
def test_an_imported_run_is_stored_with_its_metrics_evaluation_and_files(trainer, dataset, small_set):
    response = _post(trainer, _parts(dataset, small_set))
    assert response.status_code == 201, response.content
    run = TrainingRun.objects.get()
    assert run.imported and run.status == "completed" and run.steps_completed == 20
    assert RunMetric.objects.filter(run=run).count() == 20
    evaluation = Evaluation.objects.get(run=run)
    assert (evaluation.item_count, evaluation.primary_score) == (2, 0.5)  # judged here: one right, one wrong
    assert set(RunArtifact.objects.filter(run=run).values_list("name", flat=True)) == {"run_config.json",
                                                                                      "checkpoints/20/x"}
    assert response["Location"] == f"/api/tunix/runs/{run.pk}"


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "field"), [
    ({"run": None}, "run"),
    ("wrong hash", "run.dataset_content_hash"),
    ({"metrics": b'{"step": 1, "loss": "low"}\n{"step": 1, "loss": 0.2}\nnot json\n'}, "metrics[1]"),
    ({"predictions": b'{"id": "nope-0", "output": "x"}\n'}, "predictions[1].id"),
    ("escaping archive", "archive"),
    ({"archive": b"not a tar at all"}, "archive"),
    ("bad config", "run.config.learning_rate"),
    # model_dir is confined on every path: the run's config, and the run_config.json inside the archive.
    ("server path in config", "run.config.model_dir"),
    ("climbing path in config", "run.config.model_dir"),
    ("absolute model_dir in archive", "archive"),
    ("climbing model_dir in archive", "archive"),
])
def test_bad_imports_are_refused_and_nothing_is_stored(trainer, dataset, small_set, change, field, settings):
    parts = _parts(dataset, small_set)
    if change == "wrong hash":
        parts["run"] = json.dumps({**json.loads(parts["run"]), "dataset_content_hash": "0" * 64})
    elif change == "escaping archive":
        parts["archive"] = SimpleUploadedFile("x.tar", _tar({"../../etc/cron.d/x": b"boom"}, prefix="", gz=False))
    elif change == "bad config":
        run = json.loads(parts["run"])
        parts["run"] = json.dumps({**run, "config": {**run["config"], "learning_rate": 7}})
    elif change in ("server path in config", "climbing path in config"):
        run = json.loads(parts["run"])
        gemma = {"backend": "tunix", "model": "gemma3-tiny", "max_steps": 20, "max_seq_len": 128,
                 "model_dir": "/etc" if change == "server path in config" else "../../etc"}
        parts["run"] = json.dumps({**run, "config": gemma})
    elif change in ("absolute model_dir in archive", "climbing model_dir in archive"):
        model_dir = "/etc" if change.startswith("absolute") else "../../../etc"
        parts["archive"] = SimpleUploadedFile("out.tar.gz", _tar({
            "run_config.json": json.dumps({"backend": "tunix", "model_dir": model_dir}).encode(),
            "checkpoints/20/x": b"w"}))
    else:
        for key, value in change.items():
            if value is None:
                parts.pop(key)
            else:
                parts[key] = SimpleUploadedFile(key, value)
    response = _post(trainer, parts)
    assert response.status_code == 400, response.content
    assert any(key.startswith(field) for key in response.json()["detail"]), response.json()
    for folder in (settings.MODELS_DIR, settings.RUNS_DIR, settings.DATA_DIR):
        assert str(folder) not in response.content.decode()  # no server path in any message
    assert _stored() == (0, 0, 0, 0)
    assert not any((settings.RUNS_DIR).glob("*")) if settings.RUNS_DIR.exists() else True


def _predictions_of(small_set, positions, answer=True):
    items = list(small_set.items.order_by("position"))
    rows = [{"id": items[p].item_id, "output": f"<reasoning>r</reasoning><answer>"
             f"{items[p].expected_answer if answer else 'x'}</answer>"} for p in positions]
    return SimpleUploadedFile("predictions.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())


@pytest.mark.django_db
def test_an_imported_evaluation_is_labelled_imported_with_the_slice_its_items_cover(trainer, dataset, small_set):
    response = _post(trainer, _parts(dataset, small_set, evaluation=json.dumps({"eval_set": small_set.pk})))
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["evaluation"]["source"], body["evaluation"]["section"], body["evaluation"]["limit"]) == (
        "imported", "", 2)
    assert body["run"]["source"] == "imported"
    evaluation = Evaluation.objects.get()
    assert (evaluation.source, evaluation.checkpoint_step) == ("imported", 20)  # the archive's checkpoint


@pytest.mark.django_db
@pytest.mark.parametrize(("positions", "section", "limit"), [
    ([0, 1, 2, 3, 4, 5], "", None),
    ([4, 5], "out_of_distribution", None),
    ([0, 1, 2], "", 3),
])
def test_the_slice_is_derived_from_the_answered_items(trainer, dataset, small_set, positions, section, limit):
    parts = _parts(dataset, small_set, predictions=_predictions_of(small_set, positions))
    assert _post(trainer, parts).status_code == 201
    assert (Evaluation.objects.get().section, Evaluation.objects.get().limit) == (section, limit)


@pytest.mark.django_db
def test_answers_to_no_slice_are_refused_naming_the_items_a_prefix_would_need(trainer, dataset, small_set):
    response = _post(trainer, _parts(dataset, small_set, predictions=_predictions_of(small_set, [0, 2])))
    assert response.status_code == 400
    assert "small-v1-1" in response.json()["detail"]["predictions"][0]
    assert _stored() == (0, 0, 0, 0)


@pytest.mark.django_db
@pytest.mark.parametrize(("claim", "field"), [
    ({"limit": 250}, "evaluation.limit"),       # two items are no "all 250"
    ({"limit": 1}, "evaluation.limit"),
    ({"section": "out_of_distribution"}, "evaluation.section"),
    ({"temperature": 0}, "evaluation.temperature"),
    ({"generation": "greedy"}, "evaluation.generation"),
])
def test_a_slice_the_client_claims_must_be_the_one_it_answered(trainer, dataset, small_set, claim, field):
    parts = _parts(dataset, small_set, evaluation=json.dumps({"eval_set": small_set.pk, **claim}))
    response = _post(trainer, parts)
    assert response.status_code == 400, response.content
    assert field in response.json()["detail"]
    assert _stored() == (0, 0, 0, 0)


@pytest.mark.django_db
def test_a_claimed_limit_equal_to_what_was_answered_is_accepted(trainer, dataset, small_set):
    parts = _parts(dataset, small_set, evaluation=json.dumps({"eval_set": small_set.pk, "limit": 2}))
    assert _post(trainer, parts).status_code == 201
    full = _parts(dataset, small_set, evaluation=json.dumps({"eval_set": small_set.pk, "limit": 6}),
                  predictions=_predictions_of(small_set, range(6)))
    assert _post(trainer, full).status_code == 201
    assert sorted(Evaluation.objects.values_list("limit", flat=True), key=str) == [2, None]


@pytest.mark.django_db
def test_an_unknown_dataset_is_404_and_nothing_is_stored(trainer, dataset, small_set):
    parts = _parts(dataset, small_set)
    parts["run"] = json.dumps({**json.loads(parts["run"]), "dataset_id": "nope-v1"})
    response = _post(trainer, parts)
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert _stored() == (0, 0, 0, 0)
