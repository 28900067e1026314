from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.authentication import actor_label
from apps.evaluations.api.serializers import EvaluationSerializer
from apps.evaluations.api.views import evaluation_accepted
from apps.registry import selectors, services, storage
from apps.registry.api import serializers as s
from apps.registry.integrity import version_base_weights_check
from apps.registry.requests import (
    AliasRequestSerializer,
    ModelRequestSerializer,
    PromoteRequestSerializer,
    SweepPromoteRequestSerializer,
    VersionEvaluateRequestSerializer,
)
from apps.runs.selectors import run_get
from apps.sweeps.selectors import sweep_get

WRITE_PERMISSION = "registry.add_modelversion"


class ModelListCreateView(generics.ListAPIView):
    serializer_class = s.RegisteredModelSerializer
    write_permission = "registry.add_registeredmodel"

    def get_queryset(self):
        return selectors.models_visible_to(self.request.user).select_related("created_by").order_by("name")

    @extend_schema(request=ModelRequestSerializer, responses={201: s.RegisteredModelSerializer})
    def post(self, request):
        model = services.registered_model_create(data=request.data, user=request.user)
        return Response(s.RegisteredModelSerializer(model).data, status=status.HTTP_201_CREATED)


class ModelDetailView(APIView):
    @extend_schema(responses=dict)
    def get(self, request, model_ref):
        """The model, its aliases and their history."""
        model = selectors.model_get(user=request.user, model_ref=model_ref)
        history = s.AliasEventSerializer(selectors.alias_history(model)[:100], many=True).data
        return Response({**s.RegisteredModelSerializer(model).data, "alias_history": history})


class ModelVersionListView(generics.ListAPIView):
    serializer_class = s.ModelVersionSerializer

    def get_queryset(self):
        model = selectors.model_get(user=self.request.user, model_ref=self.kwargs["model_ref"])
        return model.versions.select_related("model").order_by("-number")


class PromoteView(APIView):
    write_permission = WRITE_PERMISSION

    @extend_schema(request=PromoteRequestSerializer, responses={201: s.ModelVersionDetailSerializer,
                                                                  200: s.ModelVersionDetailSerializer})
    def post(self, request, model_ref):
        """A completed run → the next version (201); the same run again → its version (200)."""
        model = selectors.model_get(user=request.user, model_ref=model_ref)
        version, created = services.model_version_promote(model=model, data=request.data, user=request.user)
        return Response(s.ModelVersionDetailSerializer(version).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class AliasView(APIView):
    write_permission = WRITE_PERMISSION

    @extend_schema(request=AliasRequestSerializer, responses={200: s.AliasEventSerializer})
    def put(self, request, model_ref, alias):
        """Point an alias at a version; `champion` needs a passing regression check (or a superuser's
        forced move with a reason)."""
        model = selectors.model_get(user=request.user, model_ref=model_ref)
        event = services.model_alias_move(model=model, alias=alias, data=request.data, user=request.user,
                                          actor_label=actor_label(request))
        return Response(s.AliasEventSerializer(event).data)


class ModelVersionDetailView(APIView):
    @extend_schema(responses=s.ModelVersionDetailSerializer)
    def get(self, request, version_id):
        return Response(s.ModelVersionDetailSerializer(selectors.version_get(user=request.user,
                                                                             version_id=version_id)).data)


class ModelVersionDownloadView(APIView):
    @extend_schema(responses={(200, "application/x-tar"): OpenApiResponse(OpenApiTypes.BINARY,
                                                                           description="a tar archive")})
    def get(self, request, version_id):
        """The version as a streamed tar archive: its folder layout plus MODEL_MANIFEST.json with each
        file's sha256. Unpacked, `python -m training generate --out <folder>` loads it."""
        version = selectors.version_get(user=request.user, version_id=version_id)
        version_base_weights_check(version, for_download=True)  # adapters only mean something over them
        files = [(f.path, f.blob_id, f.blob.size_bytes) for f in version.files.select_related("blob").order_by("path")]
        prefix = f"{version.model.name}-{version.label}"
        manifest = {"model": version.model.name, "label": version.label, "version_id": str(version.pk),
                    "source_run_id": str(version.source_run_id), "checkpoint_step": version.checkpoint_step,
                    "dataset_id": version.dataset_version_id, "dataset_content_hash": version.dataset_content_hash,
                    "config_hash": version.config_hash,
                    "base_weights": {"sha256": version.base_weights_sha256 or None,
                                     "tokenizer_sha256": version.tokenizer_sha256 or None,
                                     "model_dir": version.base_model_dir or None,
                                     "included": version.base_weights_included},
                    "files": [{"path": path, "sha256": sha, "size_bytes": size} for path, sha, size in files]}
        storage.check_blobs(files)  # before the first byte: a lost blob is a 503, not an archive cut short
        archive = storage.VersionArchive(files, manifest, prefix, mtime=int(version.created_at.timestamp()))
        response = StreamingHttpResponse(archive, content_type="application/x-tar")
        response["Content-Length"] = str(len(archive))
        response["Content-Disposition"] = f'attachment; filename="{prefix}.tar"'
        return response


class ModelVersionEvaluateView(APIView):
    write_permission = "evaluations.add_evaluation"

    @extend_schema(request=VersionEvaluateRequestSerializer, responses={202: EvaluationSerializer,
                                                                       200: EvaluationSerializer})
    def post(self, request, version_id):
        """Evaluate a version: its source run's checkpoint at the version's step (the same weights); an
        identical evaluation already queued or running is answered instead (200)."""
        version = selectors.version_get(user=request.user, version_id=version_id)
        version_base_weights_check(version, for_download=False)
        run = run_get(user=request.user, run_id=version.source_run_id)
        evaluation, created = services.model_version_evaluate(version=version, run=run, data=request.data,
                                                              user=request.user)
        return evaluation_accepted(evaluation, created)


class ModelVersionLineageView(APIView):
    @extend_schema(parameters=[s.LineageQuerySerializer], responses=dict)
    def get(self, request, version_id):
        """Version → run → dataset version → a page of its traces with their curation events."""
        version = selectors.version_get(user=request.user, version_id=version_id)
        query = s.LineageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(selectors.version_lineage(version, user=request.user,
                                                  trace_offset=query.validated_data["offset"],
                                                  trace_limit=query.validated_data["limit"]))


class TraceLineageView(APIView):
    @extend_schema(responses=dict)
    def get(self, request, trace_id):
        """Every dataset version, run and model version that used this trace."""
        return Response(selectors.trace_lineage(user=request.user, trace_id=trace_id))


class SweepPromoteView(APIView):
    write_permission = WRITE_PERMISSION

    @extend_schema(request=SweepPromoteRequestSerializer, responses={201: s.ModelVersionDetailSerializer,
                                                                    200: s.ModelVersionDetailSerializer})
    def post(self, request, sweep_id):
        """Promote the sweep's best trial to a version of `model` (body: {"model": name, "label"?})."""
        sweep = sweep_get(user=request.user, sweep_id=sweep_id)
        version, created = services.sweep_best_promote(sweep=sweep, data=request.data, user=request.user)
        return Response(s.ModelVersionDetailSerializer(version).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
