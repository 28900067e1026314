from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.sweeps import selectors, services
from apps.sweeps.api import serializers as s
from apps.sweeps.requests import SweepRequestSerializer

SWEEP_PERMISSION = "sweeps.add_sweepjob"


class SweepListCreateView(generics.ListAPIView):
    serializer_class = s.SweepSerializer
    write_permission = SWEEP_PERMISSION

    def get_queryset(self):
        return selectors.sweeps_visible_to(self.request.user).select_related("best_trial__run").order_by("-created_at")

    @extend_schema(request=SweepRequestSerializer, responses={201: s.SweepDetailSerializer})
    def post(self, request):
        sweep = services.sweep_create(data=request.data, user=request.user)
        return Response(s.SweepDetailSerializer(sweep).data, status=status.HTTP_201_CREATED)


class SweepDetailView(APIView):
    @extend_schema(responses=s.SweepDetailSerializer)
    def get(self, request, sweep_id):
        return Response(s.SweepDetailSerializer(selectors.sweep_get(user=request.user, sweep_id=sweep_id)).data)


class SweepStartView(APIView):
    write_permission = SWEEP_PERMISSION

    @extend_schema(request=None, responses={202: s.SweepDetailSerializer})
    def post(self, request, sweep_id):
        """Start the sweep: its first trials are queued at once (up to max_concurrent)."""
        sweep = services.sweep_start(sweep=selectors.sweep_get(user=request.user, sweep_id=sweep_id))
        return Response(s.SweepDetailSerializer(sweep).data, status=status.HTTP_202_ACCEPTED)


class SweepCancelView(APIView):
    write_permission = SWEEP_PERMISSION

    @extend_schema(request=None, responses={200: s.SweepDetailSerializer})
    def post(self, request, sweep_id):
        """Stop launching trials and cancel the running ones."""
        sweep = services.sweep_cancel(sweep=selectors.sweep_get(user=request.user, sweep_id=sweep_id))
        return Response(s.SweepDetailSerializer(sweep).data)
