from django.urls import reverse
from rest_framework import serializers

from apps.core.api.serializers import JobSerializerMixin
from apps.core.validation import QuerySerializer
from apps.evaluations.models import (
    EvalSet,
    Evaluation,
    EvaluationSource,
    Prediction,
    RegressionBaseline,
    RegressionCheck,
)
from apps.evaluations.selectors import COMPARABLE, LEADERBOARD_SOURCES


def ci_method(obj) -> str | None:
    """Which interval `ci` is: Wilson since evaluations recorded it, the bootstrap before."""
    if obj.ci_low is None:
        return None
    return (obj.metrics or {}).get("answer_accuracy_ci_method", "bootstrap")


class EvaluationSerializer(JobSerializerMixin, serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    run_id = serializers.UUIDField(read_only=True, allow_null=True)
    eval_set = serializers.CharField(source="eval_set_id", read_only=True)
    source = serializers.ChoiceField(choices=EvaluationSource.values, read_only=True,
                                     help_text="server: generated here from stored weights; imported: outputs a "
                                               "client reported, judged here (never gate or version evidence)")
    ci = serializers.SerializerMethodField(help_text="95 % interval of the answer accuracy")
    ci_method = serializers.SerializerMethodField(help_text="wilson (score interval) or bootstrap (older rows)")

    class Meta:
        model = Evaluation
        fields = ["id", "url", *JobSerializerMixin.JOB_FIELDS, "run_id", "checkpoint_step", "eval_set",
                  "eval_set_hash", "section", "limit", "source", "judges", "judge_key", "generation", "item_count",
                  "primary_score", "ci", "ci_method", "auto"]

    def get_url(self, obj) -> str:
        return reverse("evaluation-detail", kwargs={"evaluation_id": obj.pk})

    def get_ci(self, obj) -> list[float] | None:
        return None if obj.ci_low is None else [obj.ci_low, obj.ci_high]

    def get_ci_method(self, obj) -> str | None:
        return ci_method(obj)


class EvaluationDetailSerializer(EvaluationSerializer):
    links = serializers.SerializerMethodField()

    class Meta(EvaluationSerializer.Meta):
        fields = [*EvaluationSerializer.Meta.fields, "metrics", "links"]

    def get_links(self, obj) -> dict:
        links = {"predictions": reverse("evaluation-predictions", kwargs={"evaluation_id": obj.pk})}
        if obj.run_id:
            links["run"] = reverse("run-detail", kwargs={"run_id": obj.run_id})
        return links


class LeaderboardRowSerializer(serializers.ModelSerializer):
    rank = serializers.IntegerField()
    evaluation_id = serializers.UUIDField(source="id")
    evaluation_url = serializers.SerializerMethodField()
    run_id = serializers.UUIDField(allow_null=True)
    source = serializers.ChoiceField(choices=EvaluationSource.values, read_only=True)
    dataset_id = serializers.CharField(source="run.dataset_version_id", allow_null=True, default=None)
    backend = serializers.CharField(source="run.backend", allow_null=True, default=None)
    model = serializers.CharField(source="run.model", allow_null=True, default=None)
    eval_set = serializers.CharField(source="eval_set_id")
    group = serializers.SerializerMethodField()
    ci = serializers.SerializerMethodField(help_text="95 % interval of the answer accuracy (see ci_method)")
    ci_method = serializers.SerializerMethodField()
    format_compliance = serializers.SerializerMethodField()
    predictions_url = serializers.SerializerMethodField()

    class Meta:
        model = Evaluation
        fields = ["rank", "group", "evaluation_id", "evaluation_url", "eval_set", "source", "run_id", "dataset_id",
                  "backend", "model", "primary_score", "ci", "ci_method", "format_compliance", "item_count",
                  "finished_at", "predictions_url"]

    def get_group(self, obj) -> dict:
        return {key: getattr(obj, key) for key in COMPARABLE}

    def get_ci(self, obj) -> list[float] | None:
        return None if obj.ci_low is None else [obj.ci_low, obj.ci_high]

    def get_ci_method(self, obj) -> str | None:
        return ci_method(obj)

    def get_format_compliance(self, obj) -> float | None:
        return obj.metrics.get("format_compliance")

    def get_evaluation_url(self, obj) -> str:
        return reverse("evaluation-detail", kwargs={"evaluation_id": obj.pk})

    def get_predictions_url(self, obj) -> str:
        return reverse("evaluation-predictions", kwargs={"evaluation_id": obj.pk})


class LeaderboardQuerySerializer(QuerySerializer):
    eval_set = serializers.CharField(max_length=200, required=False)
    dataset = serializers.CharField(max_length=200, required=False)
    backend = serializers.ChoiceField(choices=["builtin", "tunix"], required=False)
    section = serializers.CharField(max_length=64, required=False, allow_blank=True)
    source = serializers.ChoiceField(choices=LEADERBOARD_SOURCES, required=False, default="server",
                                     help_text="server (default), imported (client-reported outputs, ranked only "
                                               "among themselves) or all")


class PredictionSerializer(serializers.ModelSerializer):
    item_id = serializers.CharField(source="item.item_id")
    prompt = serializers.CharField(source="item.prompt")
    expected_answer = serializers.CharField(source="item.expected_answer")
    category = serializers.CharField(source="item.category")
    section = serializers.CharField(source="item.section")
    difficulty = serializers.CharField(source="item.difficulty")

    class Meta:
        model = Prediction
        fields = ["item_id", "prompt", "expected_answer", "category", "section", "difficulty", "raw_output",
                  "extracted_answer", "correct", "format_ok", "reasoning_ok", "reasoning_details", "llm_judge",
                  "output_tokens", "stopped", "latency_s"]


class PredictionQuerySerializer(QuerySerializer):
    correct = serializers.BooleanField(required=False, allow_null=True, default=None)
    category = serializers.CharField(max_length=64, required=False)
    section = serializers.CharField(max_length=64, required=False)
    difficulty = serializers.CharField(max_length=32, required=False)


class EvalSetSerializer(serializers.ModelSerializer):
    class Meta:
        model = EvalSet
        fields = ["id", "name", "version", "content_hash", "item_count"]


class BaselineSerializer(serializers.ModelSerializer):
    eval_set = serializers.CharField(source="eval_set_id", read_only=True)
    evaluation_id = serializers.UUIDField(read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    value = serializers.SerializerMethodField()

    class Meta:
        model = RegressionBaseline
        fields = ["id", "name", "kind", "metric", "eval_set", "evaluation_id", "value", "lower_is_better", "tolerance",
                  "tolerance_mode", "decision", "created_by", "created_at"]

    def get_value(self, obj) -> float | None:
        from apps.evaluations.selectors import metric_value

        return metric_value(obj.evaluation.metrics, obj.metric)


class CheckSerializer(serializers.ModelSerializer):
    baseline = serializers.CharField(source="baseline.name")
    evaluation_id = serializers.UUIDField()
    paired_ci = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = RegressionCheck
        fields = ["id", "result", "baseline", "evaluation_id", "metric", "baseline_value", "current_value", "delta",
                  "delta_pct", "decision", "paired_ci", "paired_items", "minimum_detectable_effect", "details",
                  "created_by", "created_at"]

    def get_paired_ci(self, obj) -> list | None:
        return None if obj.paired_ci_low is None else [obj.paired_ci_low, obj.paired_ci_high]
