import yaml
from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.authentication import actor_label
from apps.core.errors import Invalid, TooLarge
from apps.core.parsers import LimitedJSONParser
from apps.core.validation import validated
from apps.datasets import requests, selectors, services
from apps.datasets.api import serializers as s
from apps.datasets.api.negotiation import ExportFormatNegotiation
from apps.datasets.api.parsers import JSONLinesParser, LimitedMultiPartParser, NDJSONParser
from apps.datasets.builds import dataset_build_submit
from apps.datasets.ingest import traces_ingest
from apps.datasets.spec import BuildRequestSerializer, parse_build_request
from training.config import ConfigError, TrainConfig
from training.generators import generate
from training.generators.high_card_duel import GAME, GENERATOR, GENERATOR_VERSION, QUESTIONS
from training.render import TEMPLATE_NAME, TEMPLATE_VERSION

NDJSON = "application/x-ndjson; charset=utf-8"
_ndjson_schema = OpenApiResponse(OpenApiTypes.STR, description="NDJSON, one object per line")


class ReadOnlyRequest(permissions.BasePermission):
    """Any authenticated caller, read keys included: for POSTs that only read (export bodies)."""

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated)


def _ndjson_response(chunks, filename: str, headers: dict | None = None) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type=NDJSON)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def _dataset_export(dataset, fmt: str, split: str | None) -> StreamingHttpResponse:
    suffix = f"-{split}" if split else ""
    return _ndjson_response(
        selectors.dataset_export_chunks(dataset=dataset, fmt=fmt, split=split),
        f"{dataset.pk}-{fmt}{suffix}.jsonl",
        {"X-Dataset-Id": dataset.pk, "X-Dataset-Content-Hash": dataset.content_hash},
    )


class DatasetListView(generics.ListAPIView):
    serializer_class = s.DatasetVersionSerializer

    def get_queryset(self):
        return (selectors.datasets_visible_to(self.request.user).select_related("created_by")
                .defer("manifest").order_by("-created_at", "id"))


class DatasetDetailView(APIView):
    @extend_schema(responses=s.DatasetVersionDetailSerializer)
    def get(self, request, dataset_id):
        version = selectors.dataset_get(user=request.user, dataset_id=dataset_id)
        return Response(s.DatasetVersionDetailSerializer(version).data)


class DatasetBuildView(APIView):
    write_permission = "datasets.add_datasetversion"

    @extend_schema(request=BuildRequestSerializer, responses={201: s.DatasetVersionSerializer,
                                                              200: s.DatasetVersionSerializer,
                                                              202: s.DatasetBuildSerializer})
    def post(self, request):
        """Small builds answer with the version (201 new, 200 already stored); larger ones
        (over DATASET_BUILD_SYNC_MAX_TRACES) answer 202 with the build job to poll."""
        spec = parse_build_request(request.data)
        answer = dataset_build_submit(spec=spec, user=request.user, actor_label=actor_label(request))
        if answer.build is not None:
            body = s.DatasetBuildSerializer(answer.build, context={"request": request}).data
            return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["status_url"]})
        body = {**s.DatasetVersionSerializer(answer.version).data, "created": answer.created}
        return Response(body, status=status.HTTP_201_CREATED if answer.created else status.HTTP_200_OK)


class DatasetBuildStatusView(APIView):
    @extend_schema(responses=s.DatasetBuildSerializer)
    def get(self, request, build_id):
        build = selectors.dataset_build_get(user=request.user, build_id=build_id)
        return Response(s.DatasetBuildSerializer(build, context={"request": request}).data)


class DatasetExportView(APIView):
    content_negotiation_class = ExportFormatNegotiation

    @extend_schema(parameters=[s.ExportQuerySerializer], responses={(200, "application/x-ndjson"): _ndjson_schema})
    def get(self, request, dataset_id):
        query = s.ExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        version = selectors.dataset_get(user=request.user, dataset_id=dataset_id, with_manifest=False)
        fmt = selectors.check_export_format(query.validated_data["format"])
        return _dataset_export(version, fmt, query.validated_data.get("split"))


class DatasetIngestView(APIView):
    write_permission = "traces.add_trace"
    parser_classes = [NDJSONParser, JSONLinesParser, LimitedMultiPartParser, LimitedJSONParser]

    def max_body_bytes(self):
        return settings.INGEST_MAX_BYTES

    @extend_schema(request={"application/x-ndjson": OpenApiTypes.STR, "multipart/form-data": OpenApiTypes.OBJECT},
                   parameters=[s.IngestQuerySerializer], responses={201: dict, 200: dict})
    def post(self, request):
        chunks, mode = self._upload(request)
        report = traces_ingest(chunks=chunks, mode=mode, user=request.user)
        return Response(report, status=status.HTTP_201_CREATED if report["created"] else status.HTTP_200_OK)

    def _upload(self, request):
        if "path" in request.query_params:
            raise _server_path_refused()
        query = s.IngestQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        mode = query.validated_data["mode"]
        data = request.data
        if request.content_type.split(";")[0].strip() in (NDJSONParser.media_type, JSONLinesParser.media_type):
            # DRF hands over {} instead of calling the parser when the body is empty.
            return _slices(data if isinstance(data, bytes) else b""), mode
        if request.content_type.startswith("multipart/"):
            return self._multipart(request, default_mode=mode)
        if isinstance(data, dict) and "path" in data:
            raise _server_path_refused()
        raise exceptions.UnsupportedMediaType(
            request.content_type, detail="Send NDJSON as the body (application/x-ndjson) or a multipart field "
                                         "named 'file'.")

    def _multipart(self, request, default_mode: str):
        fields = set(request.data) | set(request.FILES)
        if "path" in fields:
            raise _server_path_refused()
        unknown = sorted(fields - {"file", "mode"})
        if unknown:
            raise Invalid({key: ["Unknown field; send 'file' and optionally 'mode'."] for key in unknown})
        upload = request.FILES.get("file")
        if upload is None:
            raise Invalid({"file": ["Upload the NDJSON as a multipart field named 'file'."]})
        if upload.size > settings.INGEST_MAX_BYTES:
            raise TooLarge(f"Upload is {upload.size} bytes; the limit is {settings.INGEST_MAX_BYTES} bytes.")
        return upload.chunks(), request.data.get("mode", default_mode)


def _server_path_refused() -> Invalid:
    return Invalid({"path": [
        "Ingest never reads files on the server; send the NDJSON as the request body or a multipart field "
        "named 'file'."]})


def _slices(data: bytes, size: int = 1 << 20):
    view = memoryview(data)
    for start in range(0, len(data), size):
        yield bytes(view[start:start + size])


class TunixSftExportView(APIView):
    permission_classes = [ReadOnlyRequest]

    @extend_schema(request=requests.SftExportRequestSerializer,
                   responses={(200, "application/x-ndjson"): _ndjson_schema})
    def post(self, request):
        body = validated(requests.SftExportRequestSerializer, request.data)
        version = selectors.dataset_get(user=request.user, dataset_id=body["dataset_id"], with_manifest=False)
        return _dataset_export(version, "tunix_sft", body.get("split"))


class TunixSftManifestView(APIView):
    """A YAML training manifest: which dataset (id + hash), where to fetch it, and a validated TrainConfig."""

    permission_classes = [ReadOnlyRequest]

    @extend_schema(request=requests.SftManifestRequestSerializer,
                   responses={(200, "application/yaml"): OpenApiResponse(OpenApiTypes.STR, description="YAML")})
    def post(self, request):
        body = validated(requests.SftManifestRequestSerializer, request.data)
        version = selectors.dataset_get(user=request.user, dataset_id=body["dataset_id"], with_manifest=False)
        try:
            config = TrainConfig.from_dict(body["config"])
        except ConfigError as exc:
            raise Invalid({f"config.{key}": messages for key, messages in exc.errors.items()}) from None
        split = body["split"]
        if version.split_counts[split] == 0:
            raise Invalid({"split": [f"Split {split!r} of {version.pk} holds no traces."]})
        manifest = _training_manifest(request, version, split, config)
        text = "# tunix-rt training manifest\n" + yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True)
        return HttpResponse(text, content_type="application/yaml; charset=utf-8")


def _training_manifest(request, version, split: str, config: TrainConfig) -> dict:
    export_path = reverse("dataset-export", kwargs={"dataset_id": version.pk})
    return {
        "manifest_version": 1,
        "dataset": {"id": version.pk, "content_hash": version.content_hash, "trace_count": version.trace_count,
                    "splits": version.split_counts},
        "data": {"format": "tunix_sft", "split": split, "lines": version.split_counts[split],
                 "url": request.build_absolute_uri(f"{export_path}?format=tunix_sft&split={split}")},
        "render_template": {"name": TEMPLATE_NAME, "version": TEMPLATE_VERSION},
        "config": config.to_dict(),
        "config_hash": config.config_hash(),
    }


class UngarStatusView(APIView):
    @extend_schema(responses=dict)
    def get(self, request):
        return Response({
            "available": True,
            "game": GAME,
            "generator": {"name": GENERATOR, "version": GENERATOR_VERSION},
            "rules": {"deck": "52 cards, 4 suits of 2-10, J, Q, K, A", "deal": "one card each from a shuffled deck",
                      "ranking": "ace high; suits do not matter", "tie": "equal ranks tie"},
            "questions": list(QUESTIONS),
            "max_generate": requests.MAX_GENERATE,
        })


class UngarGenerateView(APIView):
    write_permission = "traces.add_trace"

    @extend_schema(request=requests.UngarGenerateRequestSerializer, responses={201: dict, 200: dict})
    def post(self, request):
        body = validated(requests.UngarGenerateRequestSerializer, request.data)
        count, seed, persist, approve = (body[k] for k in ("count", "seed", "persist", "approve"))
        if approve and not request.user.has_perm("traces.review_trace"):
            raise exceptions.PermissionDenied("Approving generated traces needs the 'traces.review_trace' permission.")
        generated = generate(GENERATOR, count=count, seed=seed)
        if not persist:
            return Response({"count": count, "seed": seed, "traces": generated.items, "manifest": generated.manifest})
        result = services.generated_traces_store(
            items=generated.items, approve_reason=f"generated by {GENERATOR} (seed {seed})" if approve else "",
            user=request.user, actor_label=actor_label(request))
        return Response({"count": count, "seed": seed, "trace_ids": result["trace_ids"],
                         "created": len(result["created"]), "duplicates": result["duplicates"],
                         "approved": result["approved"], "manifest": generated.manifest},
                        status=status.HTTP_201_CREATED if result["created"] else status.HTTP_200_OK)


class UngarExportView(APIView):
    content_negotiation_class = ExportFormatNegotiation

    @extend_schema(parameters=[s.UngarExportQuerySerializer], responses={(200, "application/x-ndjson"): _ndjson_schema})
    def get(self, request):
        query = s.UngarExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        fmt = selectors.check_export_format(query.validated_data["format"])
        traces = selectors.high_card_duel_traces(user=request.user, status=query.validated_data.get("status"))
        chunks = selectors.trace_export_chunks(traces=traces, fmt=fmt, limit=query.validated_data.get("limit"))
        return _ndjson_response(chunks, f"high-card-duel-{fmt}.jsonl")
