from django.conf import settings
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.datasets.api.parsers import LimitedMultiPartParser
from apps.evaluations.api.serializers import EvaluationSerializer
from apps.pipeline.imports import run_import
from apps.runs.api.serializers import TrainingRunDetailSerializer


def import_next_steps(run, evaluation) -> dict:
    """Where an imported run's numbers stand and how to get server-measured ones."""
    has_checkpoint = run.artifacts.filter(kind="checkpoint").exists()
    steps = {"note": "The imported evaluation is the client's outputs judged here (source: imported): it ranks only "
                     "among imported evaluations and is never gate or model-version evidence. "
                     + ("Evaluate the checkpoint on this server, or promote the run (which loads the checkpoint and "
                        "queues that evaluation), to get numbers that rank with server evaluations."
                        if has_checkpoint else "Without a checkpoint archive the server cannot measure it.")}
    if evaluation is not None:
        steps["leaderboard"] = (reverse("leaderboard") + f"?source=imported&eval_set={evaluation.eval_set_id}")
    if has_checkpoint:
        steps["evaluate"] = reverse("run-evaluate", kwargs={"run_id": run.pk})
        steps["promote"] = reverse("model-promote", kwargs={"model_ref": "MODEL"}).replace("MODEL", "{model}")
    return steps


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
                "evaluation": EvaluationSerializer(evaluation).data if evaluation else None,
                "next": import_next_steps(run, evaluation)}
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["run"]["url"]})
