"""Dataset reads: visibility, trace selection for builds (in the database), streamed exports."""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.db.models import Case, Count, F, Q, QuerySet, TextField, Value, When
from django.db.models.expressions import Window
from django.db.models.fields.json import KT
from django.db.models.functions import MD5, Cast, Concat, RowNumber

from apps.core.errors import Invalid, NotFound
from apps.core.lookups import get_by_uuid
from apps.core.visibility import visible_to
from apps.datasets.content import export_line, trace_line
from apps.datasets.models import DatasetBuild, DatasetItem, DatasetVersion
from apps.datasets.spec import MAX_LIMIT, BuildSpec
from apps.traces.models import Trace
from apps.traces.selectors import json_list_contains, traces_visible_to
from training.render import EXPORT_FORMATS

VIEW_PERMISSION = "datasets.view_datasetversion"
BUILD_VIEW_PERMISSION = "datasets.view_datasetbuild"
EXPORT_CHUNK = 2000
MAX_STRATA = 1000
HIGH_CARD_DUEL_GAME = "high_card_duel"


def datasets_visible_to(user) -> QuerySet[DatasetVersion]:
    """Curators, trainers, viewers and superusers see every version; anyone else only what they built."""
    return visible_to(user, DatasetVersion.objects.all(), view_all_permission=VIEW_PERMISSION)


def dataset_get(*, user, dataset_id: str, with_manifest: bool = True) -> DatasetVersion:
    """A visible version or 404. Exports skip the manifest: with 100,000 trace ids it is ~10 MB in memory."""
    versions = datasets_visible_to(user)
    if not with_manifest:
        versions = versions.defer("manifest")
    version = versions.filter(pk=dataset_id).first()
    if version is None:
        raise NotFound(f"No dataset version {dataset_id!r}.")
    return version


def dataset_version_stored(dataset_id: str) -> DatasetVersion | None:
    """The stored version with this id whoever built it (for services), without its manifest."""
    return DatasetVersion.objects.defer("manifest").filter(pk=dataset_id).first()


def dataset_build_get(*, user, build_id) -> DatasetBuild:
    """A build job the user requested (or may see all of) or NotFound; malformed ids look unknown."""
    builds = visible_to(user, DatasetBuild.objects.select_related("requested_by"),
                        view_all_permission=BUILD_VIEW_PERMISSION, owner_field="requested_by")
    return get_by_uuid(builds, build_id, what="dataset build")


# --- selection -------------------------------------------------------------------------------

def traces_matching(*, user, filters: dict) -> QuerySet[Trace]:
    """The traces a build may use: visible to `user` (None: a system caller sees all) and matching
    every filter, as one SQL query."""
    traces = Trace.objects.all() if user is None else traces_visible_to(user)
    status = filters.get("status", "approved")
    if status != "any":
        traces = traces.filter(status__in=status if isinstance(status, list) else [status])
    for key in ("source", "category"):
        if key in filters:
            traces = traces.filter(**{key: filters[key]})
    for tag in filters.get("tags", []):
        traces = traces.filter(json_list_contains("tags", tag))
    for key, value in filters.get("meta", {}).items():
        traces = traces.filter(**{f"meta__{key}": value})
    if "created_after" in filters:
        traces = traces.filter(created_at__gte=filters["created_after"])
    if "created_before" in filters:
        traces = traces.filter(created_at__lt=filters["created_before"])
    if "ids" in filters:
        traces = traces.filter(id__in=filters["ids"])
    return traces


def _seeded_rank(seed: int):
    # md5(id || ':' || seed): a seeded shuffle evaluated by the database. Django registers MD5 on
    # SQLite too, so the same expression works on both backends.
    return MD5(Concat(Cast("id", output_field=TextField()), Value(f":{seed}"), output_field=TextField()))


def select_trace_ids(*, user, spec: BuildSpec) -> tuple[list, dict]:
    """Ordered trace ids for a build and a report for the manifest; 400 when nothing matches."""
    traces = traces_matching(user=user, filters=spec.filters).order_by()
    limit = spec.limit or MAX_LIMIT
    report = {}
    if spec.strategy == "all":
        ids = list(traces.order_by("created_at", "id").values_list("id", flat=True)[: limit + 1])
        if len(ids) > limit:
            raise Invalid({"limit": [
                f"More than {limit} traces match and 'all' never truncates; narrow the filters, raise the "
                "limit (at most 100000) or use 'latest' or 'random'."]})
    elif spec.strategy == "latest":
        ids = list(traces.order_by("-created_at", "-id").values_list("id", flat=True)[:limit])
    elif spec.strategy == "random":
        ids = list(traces.order_by(_seeded_rank(spec.seed), "id").values_list("id", flat=True)[:limit])
    else:
        ids, report = _stratified_ids(traces, spec)
    if not ids:
        raise Invalid({"filters": [f"No traces match these filters: {describe_filters(spec.filters)}."]})
    return ids, report


def describe_filters(filters: dict) -> str:
    shown = {**filters, "ids": f"<{len(filters['ids'])} trace ids>"} if "ids" in filters else filters
    return json.dumps(shown, sort_keys=True)


def balanced_quotas(sizes: dict, total: int) -> dict:
    """Share `total` as equally as possible over strata of the given sizes (water filling).

    Strata smaller than their fair share give all they have; the rest is split evenly among the
    others; the remainder goes to strata in sorted-value order, so the result is deterministic.
    """
    quotas, remaining = {}, total
    open_strata = sorted(sizes, key=lambda value: (sizes[value], value))
    while open_strata and remaining > 0:
        share = remaining // len(open_strata)
        smallest = open_strata[0]
        if sizes[smallest] <= share:
            quotas[smallest] = sizes[smallest]
            remaining -= sizes[smallest]
            open_strata.pop(0)
            continue
        extra = remaining - share * len(open_strata)
        for index, value in enumerate(sorted(open_strata)):
            quotas[value] = min(sizes[value], share + (index < extra))
        break
    return {value: quotas.get(value, 0) for value in sizes}


def _stratified_ids(traces: QuerySet, spec: BuildSpec) -> tuple[list, dict]:
    # Cast to text: on SQLite an equality test on a bare key transform compares JSON, not text.
    stratum = Cast(KT(f"meta__{spec.stratify_by}"), output_field=TextField())
    with_stratum = traces.annotate(_stratum=stratum).filter(_stratum__isnull=False)
    sizes = dict(with_stratum.values_list("_stratum").annotate(n=Count("id")).values_list("_stratum", "n"))
    if len(sizes) > MAX_STRATA:
        raise Invalid({"stratify_by": [
            f"meta.{spec.stratify_by} has {len(sizes)} distinct values; stratify by a key with at most {MAX_STRATA}."]})
    # Without a limit, "balanced" means every value contributes as many traces as the rarest one.
    total = spec.limit if spec.limit else min(sizes.values(), default=0) * len(sizes)
    quotas = balanced_quotas(sizes, min(total, MAX_LIMIT))
    if not any(quotas.values()):
        return [], {}
    quota = Case(*[When(_stratum=value, then=Value(n)) for value, n in quotas.items()], default=Value(0))
    ranked = with_stratum.annotate(
        _rank=Window(RowNumber(), partition_by=[stratum], order_by=[_seeded_rank(spec.split_seed).asc(),
                                                                     F("id").asc()]),
        _quota=quota,
    )
    # Ordered round-robin over the values (rank, then value), so any prefix stays balanced too.
    ids = list(ranked.filter(_rank__lte=F("_quota")).order_by("_rank", "_stratum")
               .values_list("id", flat=True))
    return ids, {"strata": {str(value): n for value, n in sorted(quotas.items()) if n}}


# --- exports -------------------------------------------------------------------------------

def check_export_format(fmt: str) -> str:
    if fmt not in EXPORT_FORMATS:
        raise Invalid({"format": [f"Unknown format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}."]})
    return fmt


def dataset_export_chunks(*, dataset: DatasetVersion, fmt: str, split: str | None = None) -> Iterator[bytes]:
    """NDJSON of a version in manifest order, one block per database page (constant memory).

    Pages are read by keyset (position > last) rather than OFFSET, so each query is an index range
    scan and the export of the last page costs what the first did.
    """
    items = DatasetItem.objects.filter(dataset=dataset)
    if split:
        items = items.filter(split=split)
    last = -1
    while True:
        page = list(items.filter(position__gt=last).order_by("position").values_list("position", "line")
                    [:EXPORT_CHUNK])
        if not page:
            return
        yield "".join(export_line(fmt, line) + "\n" for _, line in page).encode("utf-8")
        last = page[-1][0]


_TRACE_COLUMNS = ("id", "created_at", "trace_version", "prompt", "final_answer", "steps", "meta")


def trace_export_chunks(*, traces: QuerySet[Trace], fmt: str, limit: int | None = None) -> Iterator[bytes]:
    """NDJSON of live traces ordered by (created_at, id), paged by keyset like dataset exports."""
    sent, cursor = 0, None
    traces = traces.order_by("created_at", "id")
    while limit is None or sent < limit:
        page_size = EXPORT_CHUNK if limit is None else min(EXPORT_CHUNK, limit - sent)
        page_query = traces
        if cursor is not None:
            page_query = traces.filter(Q(created_at__gt=cursor[0]) | Q(created_at=cursor[0], id__gt=cursor[1]))
        page = list(page_query.values_list(*_TRACE_COLUMNS)[:page_size])
        if not page:
            return
        lines = [export_line(fmt, trace_line(_row_trace(row), str(row[0]))) for row in page]
        yield "".join(line + "\n" for line in lines).encode("utf-8")
        sent += len(page)
        cursor = (page[-1][1], page[-1][0])


def _row_trace(row) -> dict:
    _, _, trace_version, prompt, final_answer, steps, meta = row
    return {"trace_version": trace_version, "prompt": prompt, "final_answer": final_answer, "steps": steps,
            "meta": meta}


def high_card_duel_traces(*, user, status: str | None = None) -> QuerySet[Trace]:
    traces = traces_visible_to(user).filter(meta__game=HIGH_CARD_DUEL_GAME)
    return traces.filter(status=status) if status else traces

