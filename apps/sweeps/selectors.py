"""Sweep reads: visibility (the one rule of apps.core.visibility)."""

from django.db.models import QuerySet

from apps.core.lookups import get_by_uuid
from apps.core.visibility import visible_to
from apps.sweeps.models import SweepJob

VIEW_ALL_PERMISSION = "sweeps.view_sweepjob"


def sweeps_visible_to(user) -> QuerySet[SweepJob]:
    return visible_to(user, SweepJob.objects.all(), view_all_permission=VIEW_ALL_PERMISSION)


def sweep_get(*, user, sweep_id) -> SweepJob:
    return get_by_uuid(sweeps_visible_to(user).select_related("best_trial__run"), sweep_id, what="sweep")
