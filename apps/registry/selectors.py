"""Registry reads, and lineage both ways (SPEC §6, §8).

Forward: model version → run → dataset version → its traces (a page at a time) → their curation
events, and the run's evaluations. Reverse: trace → dataset versions holding it → runs trained on
them → model versions promoted from those runs. Each walk is a fixed number of queries whatever the
size of the dataset (tests assert the counts).
"""

from __future__ import annotations

from collections import defaultdict

from django.db.models import QuerySet

from apps.core.errors import Invalid, NotFound
from apps.core.lookups import as_int, get_by_uuid
from apps.core.models import JobStatus
from apps.core.visibility import visible_to
from apps.datasets.models import DatasetItem
from apps.datasets.selectors import datasets_visible_to
from apps.evaluations.selectors import evaluations_visible_to
from apps.registry.models import NAME_RE, AliasEvent, ModelVersion, RegisteredModel
from apps.runs.models import TrainingRun
from apps.runs.selectors import runs_visible_to
from apps.runs.services import InitSource, init_from_run
from apps.traces.models import CurationEvent
from apps.traces.selectors import VIEW_ALL_PERMISSION as TRACE_VIEW_ALL_PERMISSION
from apps.traces.selectors import trace_get, traces_visible_to

VIEW_ALL_PERMISSION = "registry.view_registeredmodel"
LINEAGE_LIST_LIMIT = 200


def models_visible_to(user) -> QuerySet[RegisteredModel]:
    return visible_to(user, RegisteredModel.objects.all(), view_all_permission=VIEW_ALL_PERMISSION)


def model_get(*, user, model_ref) -> RegisteredModel:
    """By numeric id (ASCII digits) or by name; anything else is no model (404), never a 500."""
    models = models_visible_to(user)
    number = as_int(model_ref)
    if number is not None:
        model = models.filter(pk=number).first()
    elif isinstance(model_ref, str) and NAME_RE.fullmatch(model_ref):
        model = models.filter(name=model_ref).first()
    else:
        model = None
    if model is None:
        raise NotFound(f"No model {model_ref!r}.")
    return model


def versions_visible_to(user) -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(model__in=models_visible_to(user))


def version_get(*, user, version_id) -> ModelVersion:
    return get_by_uuid(versions_visible_to(user).select_related("model", "source_run", "metrics_evaluation"),
                       version_id, what="model version")


def version_init_source(*, user, ref) -> InitSource:
    """The run and checkpoint a model version was promoted from, for a run that starts from the version
    (registered with the runs app as the `init_from.version` resolver)."""
    try:
        version = version_get(user=user, version_id=ref)
    except NotFound:
        raise Invalid({"init_from.version": [f"No model version {ref!r}."]}) from None
    return init_from_run(version.source_run, version.checkpoint_step, field_name="init_from.version",
                         version_id=version.pk)


def alias_history(model: RegisteredModel) -> QuerySet[AliasEvent]:
    return (AliasEvent.objects.filter(model=model).select_related("from_version", "to_version", "regression_check")
            .order_by("-at", "-id"))


def version_lineage(version: ModelVersion, *, user, trace_offset: int = 0, trace_limit: int = 50) -> dict:
    """The version's provenance down to a page of the exact traces it was trained on, with their
    curation events (7 queries, and the caller's permissions). Only what `user` may see is listed:
    the dataset's details, its traces (a contributor sees their own) and the run's evaluations."""
    run = version.source_run
    dataset = datasets_visible_to(user).defer("manifest").filter(pk=version.dataset_version_id).first()
    evaluations = list(evaluations_visible_to(user).filter(run=run, status=JobStatus.COMPLETED)
                       .order_by("-finished_at")
                       .values("id", "eval_set_id", "source", "checkpoint_step", "primary_score", "ci_low", "ci_high",
                               "finished_at")[:50])
    rows = DatasetItem.objects.filter(dataset_id=version.dataset_version_id)
    every_trace = user.has_perm(TRACE_VIEW_ALL_PERMISSION)
    if not every_trace:
        rows = rows.filter(trace__in=traces_visible_to(user))
    items = list(rows.order_by("position").select_related("trace")
                 .only("position", "split", "trace__id", "trace__prompt", "trace__status", "trace__content_hash")
                 [trace_offset:trace_offset + trace_limit])
    events = defaultdict(list)
    for event in CurationEvent.objects.filter(trace_id__in=[item.trace_id for item in items]).order_by(
            "trace_id", "created_at", "id").values("trace_id", "action", "from_status", "to_status", "actor_label",
                                                   "reason", "created_at"):
        events[event.pop("trace_id")].append(event)
    return {
        "model_version": {"id": version.pk, "model": version.model.name, "label": version.label,
                          "checkpoint_step": version.checkpoint_step},
        "run": {"id": run.pk, "status": run.status, "backend": run.backend, "model": run.model,
                "config_hash": run.config_hash, "final_loss": run.final_loss, "algorithm": run.algorithm,
                "init_from": run.init_from or None},
        "ancestors": run_ancestors(run),
        "dataset_version": {"id": version.dataset_version_id, "content_hash": version.dataset_content_hash,
                            "trace_count": dataset.trace_count if dataset else None,
                            "created_by": dataset.created_by_id if dataset else None},
        "evaluations": evaluations,
        "traces": {"count": dataset.trace_count if every_trace and dataset else rows.count(),
                   "offset": trace_offset, "limit": trace_limit, "results": [
            {"id": item.trace_id, "position": item.position, "split": item.split, "status": item.trace.status,
             "prompt": item.trace.prompt[:200], "content_hash": item.trace.content_hash,
             "curation_events": events.get(item.trace_id, [])} for item in items]},
    }


def run_ancestors(run, *, limit: int = 20) -> list[dict]:
    """The runs whose weights `run` started from, nearest first (a GRPO run → the SFT run it continued →
    …), each with the version it was named by and its dataset, whose traces that version's lineage lists.
    One query per generation; a run that started from scratch costs none."""
    ancestors, parent_id = [], run.init_run_id
    step, version_id = run.init_step, (run.init_from or {}).get("version")
    while parent_id is not None and len(ancestors) < limit:
        parent = TrainingRun.objects.filter(pk=parent_id).values(
            "id", "status", "algorithm", "backend", "model", "config_hash", "dataset_version_id",
            "dataset_content_hash", "init_run_id", "init_step", "init_from").first()
        if parent is None:
            break
        ancestors.append({"run": parent["id"], "checkpoint_step": step, "model_version": version_id,
                          **{key: parent[key] for key in ("status", "algorithm", "backend", "model", "config_hash")},
                          "dataset_version": {"id": parent["dataset_version_id"],
                                              "content_hash": parent["dataset_content_hash"]}})
        parent_id, step = parent["init_run_id"], parent["init_step"]
        version_id = (parent["init_from"] or {}).get("version")
    return ancestors


def trace_lineage(*, user, trace_id) -> dict:
    """Everything trained on a trace that `user` may see: dataset versions, runs, model versions (4
    queries, and the caller's permissions)."""
    trace = trace_get(user=user, trace_id=trace_id)
    dataset_ids = list(DatasetItem.objects.filter(trace=trace, dataset__in=datasets_visible_to(user))
                       .order_by("dataset_id").values_list("dataset_id", flat=True)[:LINEAGE_LIST_LIMIT])
    runs = list(runs_visible_to(user).filter(dataset_version_id__in=dataset_ids).order_by("-queued_at")
                .values("id", "dataset_version_id", "status", "backend", "model", "final_loss")[:LINEAGE_LIST_LIMIT])
    versions = list(versions_visible_to(user).filter(source_run_id__in=[run["id"] for run in runs])
                    .order_by("model__name", "-number")
                    .values("id", "model__name", "label", "source_run_id", "metrics__answer_accuracy")
                    [:LINEAGE_LIST_LIMIT])
    return {
        "trace": {"id": trace.pk, "status": trace.status, "content_hash": trace.content_hash},
        "dataset_versions": dataset_ids,
        "runs": runs,
        "model_versions": [{"id": v["id"], "model": v["model__name"], "label": v["label"],
                            "source_run_id": v["source_run_id"], "answer_accuracy": v["metrics__answer_accuracy"]}
                           for v in versions],
    }
