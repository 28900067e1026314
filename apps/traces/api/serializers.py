from rest_framework import serializers

from apps.core.validation import QuerySerializer
from apps.traces.models import Trace, TraceScore, TraceStatus


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


class TraceQuerySerializer(QuerySerializer):
    status = serializers.ChoiceField(choices=TraceStatus.choices, required=False)
    source = serializers.CharField(max_length=200, required=False)
    category = serializers.CharField(max_length=200, required=False)
    tag = serializers.CharField(max_length=200, required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)


class TraceCompareQuerySerializer(QuerySerializer):
    base = serializers.UUIDField()
    other = serializers.UUIDField()
