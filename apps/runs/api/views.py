from pathlib import PurePosixPath

from django.core.handlers.asgi import ASGIRequest
from django.db import connections
from django.db.models import Count
from django.http import FileResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, renderers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.models import JobStatus
from apps.runs import selectors, services
from apps.runs.api import serializers as s
from apps.runs.api.logstream import LogStream, async_events, parse_last_event_id, sync_events
from apps.runs.requests import RunRequestSerializer
from apps.runs.storage import artifact_open

START_PERMISSION = "runs.add_trainingrun"
CANCEL_PERMISSION = "runs.cancel_trainingrun"


class TunixStatusView(APIView):
    """What can train here: backends, the queue, runs by status (of the runs the caller may see)."""

    @extend_schema(responses=dict)
    def get(self, request):
        counts = dict(selectors.runs_visible_to(request.user).order_by().values_list("status")
                      .annotate(n=Count("id")))
        return Response({
            "backends": {"builtin": {"available": services.backend_available("builtin"),
                                     "presets": ["tiny", "small"]},
                         "tunix": {"available": services.backend_available("tunix"),
                                   "presets": ["gemma3-1b", "gemma2-2b", "gemma3-tiny"]}},
            "jax_installed": services.backend_available("builtin"),
            "queue": {"queued": counts.get(JobStatus.QUEUED, 0), "running": counts.get(JobStatus.RUNNING, 0)},
            "runs_by_status": counts,
        })


class TunixRunView(APIView):
    write_permission = START_PERMISSION

    @extend_schema(request=RunRequestSerializer, responses={200: dict, 202: s.TrainingRunDetailSerializer})
    def post(self, request):
        """Validate a run; answer the plan (`dry_run`, the default) or queue it (202 + the run's URL)."""
        plan, dry_run = services.training_run_plan(data=request.data, user=request.user)
        if dry_run:
            return Response({"dry_run": True, "valid": True, **plan.report()})
        run = services.training_run_submit(plan=plan, user=request.user)
        body = s.TrainingRunDetailSerializer(run).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})


class RunListView(generics.ListAPIView):
    serializer_class = s.TrainingRunSerializer
    query_serializer_class = s.RunListQuerySerializer

    @extend_schema(parameters=[s.RunListQuerySerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = s.RunListQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return selectors.run_list(user=self.request.user, filters=query.validated_data)


class RunDetailView(APIView):
    @extend_schema(responses=s.TrainingRunDetailSerializer)
    def get(self, request, run_id):
        return Response(s.TrainingRunDetailSerializer(selectors.run_get(user=request.user, run_id=run_id)).data)


class RunStatusView(APIView):
    @extend_schema(responses=s.RunStatusSerializer)
    def get(self, request, run_id):
        run = selectors.run_get(user=request.user, run_id=run_id)
        return Response(s.RunStatusSerializer(selectors.run_status(run.pk)).data)


class EventStreamRenderer(renderers.BaseRenderer):
    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data  # error bodies only; the stream itself is a StreamingHttpResponse


class RunLogsView(APIView):
    """The run's log: Server-Sent Events by default (`log`, `metric`, `status`, `heartbeat`), or one
    JSON page with `?format=json` (poll with `since_seq` / `since_step`)."""

    renderer_classes = [EventStreamRenderer, renderers.JSONRenderer]

    @extend_schema(parameters=[s.LogQuerySerializer], responses={
        (200, "text/event-stream"): OpenApiResponse(OpenApiTypes.STR, description="the event stream"),
        (200, "application/json"): OpenApiResponse(dict, description="one page, with ?format=json")})
    def get(self, request, run_id):
        run = selectors.run_get(user=request.user, run_id=run_id)
        query = s.LogQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        since = parse_last_event_id(request.headers.get("Last-Event-ID")) or (
            query.validated_data["since_seq"], query.validated_data["since_step"])
        if request.accepted_renderer.format != "sse":
            return self._page(run, *since, query.validated_data["limit"])
        stream = LogStream(run.pk, *since)
        if isinstance(request._request, ASGIRequest):
            # This request's thread would keep its connection until the stream ends; the stream reads
            # through short-lived ones instead.
            connections.close_all()
            events = async_events(stream)
        else:
            events = sync_events(stream)
        response = StreamingHttpResponse(events, content_type="text/event-stream; charset=utf-8")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: pass events through as they come
        return response

    def handle_exception(self, exc):
        # Errors are JSON in the one error shape, whatever the stream's content type would have been.
        self.request.accepted_renderer = renderers.JSONRenderer()
        self.request.accepted_media_type = "application/json"
        return super().handle_exception(exc)

    def _page(self, run, since_seq: int, since_step: int, limit: int) -> Response:
        lines = selectors.log_lines_after(run.pk, since_seq, limit)
        metrics = selectors.metrics_after(run.pk, since_step, limit)
        status_now = selectors.run_status(run.pk)
        return Response({
            "lines": lines, "metrics": metrics, "status": status_now,
            "next_seq": lines[-1]["seq"] if lines else since_seq,
            "next_step": metrics[-1]["step"] if metrics else since_step,
            "more": len(lines) == limit or len(metrics) == limit,
        })


class RunCancelView(APIView):
    write_permission = CANCEL_PERMISSION

    @extend_schema(request=None, responses={202: s.TrainingRunSerializer, 200: s.TrainingRunSerializer})
    def post(self, request, run_id):
        """Queued runs are cancelled at once (200); running ones stop after their current step (202)."""
        run = services.training_run_cancel(run=selectors.run_get(user=request.user, run_id=run_id))
        code = status.HTTP_200_OK if run.status == JobStatus.CANCELLED else status.HTTP_202_ACCEPTED
        return Response(s.TrainingRunSerializer(run).data, status=code)


class RunMetricsView(APIView):
    @extend_schema(parameters=[s.MetricsQuerySerializer], responses=dict)
    def get(self, request, run_id):
        """Per-step metrics as columns; `max_points` samples long runs evenly for charts."""
        run = selectors.run_get(user=request.user, run_id=run_id)
        query = s.MetricsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response({"run_id": str(run.pk), **selectors.run_metrics(
            run.pk, max_points=query.validated_data.get("max_points"))})


class RunCompletionsView(generics.ListAPIView):
    """A GRPO run's sampled completions with each judge's verdict, newest step first (an SFT run has none)."""

    serializer_class = s.CompletionSerializer
    query_serializer_class = s.CompletionQuerySerializer

    @extend_schema(parameters=[s.CompletionQuerySerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        run = selectors.run_get(user=self.request.user, run_id=self.kwargs["run_id"])
        query = s.CompletionQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return selectors.run_completions(run, query.validated_data)


class RunArtifactListView(generics.ListAPIView):
    serializer_class = s.RunArtifactSerializer

    def get_queryset(self):
        return selectors.run_artifacts(selectors.run_get(user=self.request.user, run_id=self.kwargs["run_id"]))


class RunArtifactDownloadView(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY,
                                                                                  description="the file")})
    def get(self, request, run_id, name):
        """Streams one recorded artifact; any other name (`..`, an absolute path) is 404."""
        run = selectors.run_get(user=request.user, run_id=run_id)
        artifact = selectors.run_artifact(run, name)
        response = FileResponse(artifact_open(run, artifact), as_attachment=True,
                                filename=PurePosixPath(artifact.name).name, content_type="application/octet-stream")
        response["Content-Length"] = str(artifact.size_bytes)  # the store checked it holds exactly these
        response["X-Artifact-Sha256"] = artifact.sha256
        return response
