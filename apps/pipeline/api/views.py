from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.datasets.api.parsers import LimitedMultiPartParser
from apps.evaluations.api.serializers import EvaluationSerializer
from apps.pipeline.imports import run_import
from apps.runs.api.serializers import TrainingRunDetailSerializer


class RunImportView(APIView):
    """A run trained elsewhere (the Kaggle notebook): its config and dataset, metrics, evaluation
    predictions (judged here) and checkpoint archive, validated and stored all or nothing."""

    write_permission = "runs.add_trainingrun"
    parser_classes = [LimitedMultiPartParser]

    def max_body_bytes(self):
        return settings.IMPORT_MAX_BYTES

    @extend_schema(request={"multipart/form-data": OpenApiTypes.OBJECT}, responses={201: dict})
    def post(self, request):
        if not request.content_type.startswith("multipart/"):
            raise exceptions.UnsupportedMediaType(request.content_type, detail="Send multipart/form-data with the "
                                                  "parts run, metrics, evaluation, predictions and archive.")
        parts = {**{key: request.data[key] for key in request.data if key not in request.FILES},
                 **{key: request.FILES[key] for key in request.FILES}}
        run, evaluation = run_import(parts=parts, user=request.user)
        body = {"run": TrainingRunDetailSerializer(run).data,
                "evaluation": EvaluationSerializer(evaluation).data if evaluation else None}
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["run"]["url"]})
