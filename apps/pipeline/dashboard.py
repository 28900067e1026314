"""What the admin's front page shows above the app list: health, work by status, the latest runs,
each model's champion and its score, and the top of the leaderboard."""

from __future__ import annotations

from django.db.models import Count

from apps.core.health import system_health
from apps.datasets.models import DatasetBuild
from apps.evaluations.models import Evaluation
from apps.evaluations.selectors import leaderboard
from apps.registry.models import ModelAlias
from apps.runs.models import TrainingRun
from apps.runs.selectors import runs_visible_to
from apps.traces.models import Trace


def _by_status(queryset) -> dict:
    return dict(queryset.order_by().values_list("status").annotate(n=Count("pk")))


def dashboard(user) -> dict:
    health = system_health()
    champions = (ModelAlias.objects.filter(name="champion").select_related("model", "version")
                 .order_by("model__name")[:10])
    return {
        "health": health,
        "counts": [
            ("traces", _by_status(Trace.objects.all())),
            ("runs", _by_status(TrainingRun.objects.all())),
            ("evaluations", _by_status(Evaluation.objects.all())),
            ("dataset builds", _by_status(DatasetBuild.objects.all())),
        ],
        "latest_runs": list(runs_visible_to(user).order_by("-queued_at")[:6]),
        "champions": [{"model": alias.model, "version": alias.version,
                       "accuracy": (alias.version.metrics or {}).get("answer_accuracy")} for alias in champions],
        "leaders": list(leaderboard(user=user, filters={"eval_set": "eval-v1"})[:5]),
    }
