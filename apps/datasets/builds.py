"""Dataset builds as background jobs (SPEC §3): large builds leave the request path.

`dataset_build_submit` is what the API calls. It answers an existing id from the stored version at
once, builds a small selection synchronously, and queues a `DatasetBuild` job for anything larger
than `DATASET_BUILD_SYNC_MAX_TRACES`. The worker runs `dataset_build_run` through the one job
mechanism (apps.core.jobs): claimed once, heartbeat and progress, one final state, reaped and
retried if the worker dies. A killed attempt leaves no version (the build commits rows and files
together) and its staging folder is removed by the retry.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from apps.core.authentication import author
from apps.core.errors import Conflict
from apps.core.jobs import JobContext, job_dispatch, job_run
from apps.core.models import ACTIVE_JOB_STATUSES
from apps.datasets import storage
from apps.datasets.models import DatasetBuild, DatasetVersion
from apps.datasets.selectors import dataset_version_stored, select_trace_ids
from apps.datasets.services import dataset_version_build
from apps.datasets.spec import BuildSpec, parse_build_request


@dataclass(frozen=True)
class BuildAnswer:
    """Either a version (built now or already stored) or a queued build job."""

    version: DatasetVersion | None = None
    created: bool = False
    build: DatasetBuild | None = None


def dataset_build_submit(*, spec: BuildSpec, user=None, actor_label: str = "") -> BuildAnswer:
    selection = select_trace_ids(user=user, spec=spec)
    if dataset_version_stored(spec.dataset_id) is None and len(selection[0]) > settings.DATASET_BUILD_SYNC_MAX_TRACES:
        return BuildAnswer(build=dataset_build_queue(spec=spec, user=user, actor_label=actor_label))
    version, created = dataset_version_build(spec=spec, user=user, actor_label=actor_label, selection=selection)
    return BuildAnswer(version=version, created=created)


def dataset_build_queue(*, spec: BuildSpec, user=None, actor_label: str = "") -> DatasetBuild:
    """Queue a build job; an identical request joins the active build of the same id."""
    request = spec.as_request()
    requested_by = author(user)
    try:
        with transaction.atomic():
            build = DatasetBuild.objects.create(dataset_id=spec.dataset_id, request=request,
                                                requested_by=requested_by, actor_label=actor_label)
            job_dispatch(DatasetBuild, build.pk)
            return build
    except IntegrityError:
        active = DatasetBuild.objects.filter(dataset_id=spec.dataset_id, status__in=ACTIVE_JOB_STATUSES).first()
        if active is not None and active.request == request and active.requested_by_id == getattr(
                requested_by, "pk", None):
            return active
        raise Conflict(f"A build of {spec.dataset_id!r} is already running; wait for it to finish.",
                       code="build_in_progress",
                       extra={"build_id": str(active.pk) if active else None}) from None


def enqueue_dataset_build(build_id) -> None:
    from apps.datasets.tasks import dataset_build_task

    dataset_build_task.delay(str(build_id))


def dataset_build_run(*, build_id) -> str | None:
    """Run one build job (called by the Celery task); returns its final status."""
    return job_run(DatasetBuild, build_id, _build_work)


def _build_work(build: DatasetBuild, context: JobContext) -> dict:
    tag = f"job{build.pk.hex[:12]}"
    storage.discard_tagged_staging(build.dataset_id, tag)  # what a killed earlier attempt left
    spec = parse_build_request(build.request)
    user = get_user_model().objects.filter(pk=build.requested_by_id).first() if build.requested_by_id else None
    version, created = dataset_version_build(spec=spec, user=user, actor_label=build.actor_label,
                                             progress=context.progress, staging_tag=tag)
    return {"dataset_version": version, "created_version": created}
