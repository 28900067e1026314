from rest_framework import serializers

from apps.traces.models import Trace, TraceScore, TraceStatus


class StepSerializer(serializers.Serializer):
    i = serializers.IntegerField(min_value=0)
    type = serializers.CharField(max_length=64)
    content = serializers.CharField(max_length=20_000)


class TraceInSerializer(serializers.Serializer):
    """Documents the SPEC §2.1 body; validation itself is training.trace_schema (one validator)."""

    trace_version = serializers.CharField(max_length=64, required=False, default="1.0")
    prompt = serializers.CharField(max_length=50_000)
    final_answer = serializers.CharField(max_length=50_000)
    steps = StepSerializer(many=True)
    meta = serializers.JSONField(required=False, allow_null=True)


class TraceBatchInSerializer(serializers.Serializer):
    traces = TraceInSerializer(many=True)


class TraceScoreSerializer(serializers.ModelSerializer):
    class Meta:
        model = TraceScore
        fields = ["id", "scorer", "scorer_version", "score", "details", "created_at"]


class TraceListSerializer(serializers.ModelSerializer):
    class Meta:
        model = Trace
        fields = ["id", "created_at", "status", "source", "category", "tags", "trace_version", "prompt",
                  "final_answer", "step_count", "content_hash"]


class TraceDetailSerializer(serializers.ModelSerializer):
    class Meta:
        model = Trace
        fields = ["id", "created_at", "updated_at", "status", "source", "category", "tags", "trace_version",
                  "prompt", "final_answer", "steps", "meta", "step_count", "content_hash"]


class TraceQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=TraceStatus.choices, required=False)
    source = serializers.CharField(max_length=200, required=False)
    category = serializers.CharField(max_length=200, required=False)
    tag = serializers.CharField(max_length=200, required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)


class TraceCompareQuerySerializer(serializers.Serializer):
    base = serializers.UUIDField()
    other = serializers.UUIDField()


class TraceReviewSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=[TraceStatus.APPROVED, TraceStatus.REJECTED, TraceStatus.NEEDS_REVIEW])
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

