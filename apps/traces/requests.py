"""Request bodies of the traces endpoints, under apps.core.validation's rule.

A trace body itself is validated by `training.trace_schema` (the one validator the notebook and the
generators share, without Django); `TraceInSerializer` describes the same body for the OpenAPI document
from that module's own limits, and apps/core/tests/test_write_schemas.py checks that the two agree."""

from rest_framework import serializers

from apps.core.validation import RequestSerializer, StrictCharField
from apps.traces.models import TraceStatus
from training import trace_schema


class StepSerializer(serializers.Serializer):
    i = serializers.IntegerField(min_value=0)
    type = serializers.CharField(max_length=trace_schema.MAX_SHORT_CHARS)
    content = serializers.CharField(max_length=trace_schema.MAX_STEP_CONTENT_CHARS)


class TraceInSerializer(serializers.Serializer):
    """The SPEC §2.1 body (validated by training.trace_schema)."""

    trace_version = serializers.CharField(max_length=trace_schema.MAX_SHORT_CHARS, required=False, default="1.0")
    prompt = serializers.CharField(max_length=trace_schema.MAX_PROMPT_CHARS)
    final_answer = serializers.CharField(max_length=trace_schema.MAX_ANSWER_CHARS)
    steps = StepSerializer(many=True, min_length=1, max_length=trace_schema.MAX_STEPS)
    meta = serializers.JSONField(required=False, allow_null=True)


class TraceBatchInSerializer(serializers.Serializer):
    traces = TraceInSerializer(many=True)


class TraceReviewRequestSerializer(RequestSerializer):
    """POST /api/traces/{id}/review."""

    status = serializers.ChoiceField(choices=[TraceStatus.APPROVED, TraceStatus.REJECTED, TraceStatus.NEEDS_REVIEW])
    reason = StrictCharField(max_length=2000, required=False, allow_blank=True, default="")
