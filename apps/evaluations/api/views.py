from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.models import JobStatus
from apps.evaluations import regression, selectors, services
from apps.evaluations.api import serializers as s
from apps.evaluations.requests import BaselineRequestSerializer, CheckRequestSerializer, EvaluateRequestSerializer
from apps.runs.selectors import run_get


class RunEvaluateView(APIView):
    write_permission = "evaluations.add_evaluation"

    @extend_schema(request=EvaluateRequestSerializer, responses={202: s.EvaluationSerializer,
                                                                   200: s.EvaluationSerializer})
    def post(self, request, run_id):
        """Queue an evaluation of a completed run's checkpoint (202 + the evaluation's URL); an identical
        request while one is queued or running answers that one (200)."""
        run = run_get(user=request.user, run_id=run_id)
        evaluation, created = services.evaluation_request_or_existing(run=run, data=request.data, user=request.user)
        return evaluation_accepted(evaluation, created)


def evaluation_accepted(evaluation, created: bool) -> Response:
    body = s.EvaluationSerializer(evaluation).data
    return Response(body, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
                    headers={"Location": body["url"]})


class RunEvaluationView(APIView):
    @extend_schema(responses=s.EvaluationDetailSerializer)
    def get(self, request, run_id):
        """The run's latest evaluation."""
        run = run_get(user=request.user, run_id=run_id)
        return Response(s.EvaluationDetailSerializer(selectors.latest_run_evaluation(user=request.user, run=run)).data)


class LeaderboardView(generics.ListAPIView):
    """Completed evaluations ranked by answer accuracy (with its 95 % bootstrap interval), each only
    among comparable ones: the same eval-set content, judges and versions, section and limit (`group`)."""

    serializer_class = s.LeaderboardRowSerializer
    query_serializer_class = s.LeaderboardQuerySerializer

    @extend_schema(parameters=[s.LeaderboardQuerySerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = s.LeaderboardQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return selectors.leaderboard(user=self.request.user, filters=query.validated_data)


class EvaluationDetailView(APIView):
    @extend_schema(responses=s.EvaluationDetailSerializer)
    def get(self, request, evaluation_id):
        evaluation = selectors.evaluation_get(user=request.user, evaluation_id=evaluation_id)
        return Response(s.EvaluationDetailSerializer(evaluation).data)


class EvaluationCancelView(APIView):
    write_permission = "evaluations.cancel_evaluation"

    @extend_schema(request=None, responses={200: s.EvaluationSerializer, 202: s.EvaluationSerializer})
    def post(self, request, evaluation_id):
        """Queued evaluations are cancelled at once (200); running ones stop after their current batch and
        keep the predictions they stored (202)."""
        evaluation = services.evaluation_cancel(
            evaluation=selectors.evaluation_get(user=request.user, evaluation_id=evaluation_id))
        code = status.HTTP_200_OK if evaluation.status == JobStatus.CANCELLED else status.HTTP_202_ACCEPTED
        return Response(s.EvaluationSerializer(evaluation).data, status=code)


class PredictionListView(generics.ListAPIView):
    """Every prediction next to its item, in item order; filter to the wrong ones or one category."""

    serializer_class = s.PredictionSerializer
    query_serializer_class = s.PredictionQuerySerializer

    @extend_schema(parameters=[s.PredictionQuerySerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        evaluation = selectors.evaluation_get(user=self.request.user, evaluation_id=self.kwargs["evaluation_id"])
        query = s.PredictionQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        filters = {key: value for key, value in query.validated_data.items() if value is not None}
        return selectors.predictions(evaluation=evaluation, filters=filters)


class BaselineListCreateView(generics.ListAPIView):
    serializer_class = s.BaselineSerializer
    write_permission = "evaluations.add_regressionbaseline"

    def get_queryset(self):
        return selectors.baselines_visible_to(self.request.user).select_related("evaluation", "created_by") \
            .order_by("name")

    @extend_schema(request=BaselineRequestSerializer, responses={201: s.BaselineSerializer})
    def post(self, request):
        baseline = regression.baseline_create(data=request.data, user=request.user)
        return Response(s.BaselineSerializer(baseline).data, status=status.HTTP_201_CREATED)


class RegressionCheckView(APIView):
    write_permission = "evaluations.add_regressioncheck"

    @extend_schema(request=CheckRequestSerializer, responses={201: s.CheckSerializer})
    def post(self, request):
        """Compare an evaluation (or a run's latest) with a baseline: pass or fail, stored."""
        check = regression.regression_check_request(data=request.data, user=request.user)
        return Response(s.CheckSerializer(check).data, status=status.HTTP_201_CREATED)
