"""Evaluation fixtures: private folders, a small eval set, and a completed run whose checkpoint was
trained once per session (a real `tiny` model, so generation and judging are real)."""

import shutil
import uuid

import pytest
from django.utils import timezone

from apps.evaluations.models import EvalItem, EvalSet
from apps.runs.models import TrainingRun
from apps.runs.testing import short_trace, tiny_config

SMALL_ITEMS = [(f"What is {10 + i} + {3 + i % 5}?", str(13 + i + i % 5), ["arithmetic", "counting"][i % 2],
                ["in_distribution", "out_of_distribution"][i // 4]) for i in range(6)]


@pytest.fixture(autouse=True)
def data_dirs(settings, tmp_path):
    settings.DATASETS_DIR = tmp_path / "datasets"
    settings.RUNS_DIR = tmp_path / "runs"
    settings.MODELS_DIR = tmp_path / "models"
    settings.DATA_DIR = tmp_path / "data"
    return tmp_path


def make_eval_set(name="small", version="v1", items=SMALL_ITEMS, content_hash=None) -> EvalSet:
    eval_set = EvalSet.objects.create(id=f"{name}-{version}", name=name, version=version,
                                      content_hash=content_hash or uuid.uuid4().hex * 2, item_count=len(items))
    EvalItem.objects.bulk_create([EvalItem(eval_set=eval_set, item_id=f"{name}-{version}-{i}", position=i, prompt=p,
                                           expected_answer=a, category=c, section=s, difficulty="easy")
                                  for i, (p, a, c, s) in enumerate(items)])
    return eval_set


@pytest.fixture
def small_set(db):
    return make_eval_set()


@pytest.fixture(scope="session")
def trained_out(tmp_path_factory):
    """A real tiny checkpoint, trained once for the whole session (run folder `out/` layout)."""
    from training.engine import train
    from training.render import render_tunix_sft

    folder = tmp_path_factory.mktemp("trained")
    data = folder / "train.jsonl"
    import json

    data.write_text("".join(json.dumps(render_tunix_sft(short_trace(i), f"t{i}")) + "\n" for i in range(24)))
    train(tiny_config(max_steps=30, checkpoint_every=15), data, folder / "out")
    return folder / "out"


@pytest.fixture
def completed_run(dataset, trainer, trained_out, settings):  # noqa: F811 - the imported fixture
    run = TrainingRun.objects.create(
        dataset_version=dataset, dataset_content_hash=dataset.content_hash, config=tiny_config(max_steps=30),
        config_hash="0" * 64, backend="builtin", model="tiny", seed=0, max_steps=30, steps_completed=30,
        status="completed", attempt=1, started_at=timezone.now(), finished_at=timezone.now(), created_by=trainer,
        auto_evaluate=False)
    shutil.copytree(trained_out, settings.RUNS_DIR / str(run.pk) / "out")
    from apps.runs.storage import RunPaths, record_artifacts

    record_artifacts(run, RunPaths.of(run))
    return run
