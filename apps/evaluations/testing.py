"""Test builders for evaluations (imported by any app's tests; the fixtures built on them live in the root
conftest.py): a small eval set, a real tiny checkpoint, and a completed run that owns a copy of it."""

import json
import shutil
import uuid
from pathlib import Path

from django.utils import timezone

from apps.evaluations.models import EvalItem, EvalSet
from apps.runs.models import TrainingRun
from apps.runs.storage import RunPaths, record_artifacts
from apps.runs.testing import short_trace, tiny_config

SMALL_ITEMS = [(f"What is {10 + i} + {3 + i % 5}?", str(13 + i + i % 5), ["arithmetic", "counting"][i % 2],
                ["in_distribution", "out_of_distribution"][i // 4]) for i in range(6)]


def make_eval_set(name="small", version="v1", items=SMALL_ITEMS, content_hash=None) -> EvalSet:
    eval_set = EvalSet.objects.create(id=f"{name}-{version}", name=name, version=version,
                                      content_hash=content_hash or uuid.uuid4().hex * 2, item_count=len(items))
    EvalItem.objects.bulk_create([EvalItem(eval_set=eval_set, item_id=f"{name}-{version}-{i}", position=i, prompt=p,
                                           expected_answer=a, category=c, section=s, difficulty="easy")
                                  for i, (p, a, c, s) in enumerate(items)])
    return eval_set


def train_tiny_checkpoint(folder: Path, **config) -> Path:
    """A real `tiny` model trained 30 steps (checkpoints at 15 and 30) into `folder/out`; returns that folder.
    `config` overrides the tiny config (make_completed_run must be given the same overrides)."""
    from training.engine import train
    from training.render import render_tunix_sft

    data = folder / "train.jsonl"
    data.write_text("".join(json.dumps(render_tunix_sft(short_trace(i), f"t{i}")) + "\n" for i in range(24)))
    train(tiny_config(**{"max_steps": 30, "checkpoint_every": 15, **config}), data, folder / "out")
    return folder / "out"


def make_completed_run(dataset, user, trained_out: Path, **config) -> TrainingRun:
    """A completed run of `dataset` whose output folder is a copy of `trained_out`, artifacts recorded."""
    run = TrainingRun.objects.create(
        dataset_version=dataset, dataset_content_hash=dataset.content_hash,
        config=tiny_config(**{"max_steps": 30, **config}), config_hash="0" * 64, backend="builtin", model="tiny",
        seed=0, max_steps=config.get("max_steps", 30), steps_completed=config.get("max_steps", 30),
        status="completed", attempt=1, started_at=timezone.now(), finished_at=timezone.now(), created_by=user,
        auto_evaluate=False)
    shutil.copytree(trained_out, RunPaths.of(run).out)
    record_artifacts(run, RunPaths.of(run))
    return run
