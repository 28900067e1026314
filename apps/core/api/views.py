from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.health import redi_health, system_health

_health_schema = inline_serializer(
    "Health", {"status": serializers.CharField(), "checks": serializers.DictField()}
)


class HealthView(APIView):
    """Database, broker and cache checks: 503 when the database or the broker is down, `degraded` (200)
    when only the cache is (requests then read from the database)."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(responses={200: _health_schema, 503: _health_schema})
    def get(self, request):
        report = system_health()
        code = status.HTTP_503_SERVICE_UNAVAILABLE if report["status"] == "unavailable" else status.HTTP_200_OK
        return Response(report, status=code)


class RediHealthView(APIView):
    """Health of the RediAI-compatible judge service: mock mode, or a cached probe of the real one."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(responses={200: inline_serializer("RediHealth", {"status": serializers.CharField()})})
    def get(self, request):
        report = redi_health()
        code = status.HTTP_200_OK if report["status"] == "healthy" else status.HTTP_503_SERVICE_UNAVAILABLE
        return Response(report, status=code)
