from typing import Literal

from django.urls import reverse
from rest_framework import serializers

from apps.core.api.serializers import JobSerializerMixin
from apps.core.models import JobStatus
from apps.core.validation import QuerySerializer
from apps.runs.models import RunArtifact, TrainingRun
from training.config import BACKENDS
from training.rewards import JUDGE_NAMES


class TrainingRunSerializer(JobSerializerMixin, serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    dataset_id = serializers.CharField(source="dataset_version_id", read_only=True)
    url = serializers.SerializerMethodField()
    duration_seconds = serializers.FloatField(read_only=True)
    source = serializers.SerializerMethodField(help_text="server: trained by this server's workers; imported: "
                                                         "trained elsewhere, its numbers reported by a client")

    class Meta:
        model = TrainingRun
        fields = ["id", "url", *JobSerializerMixin.JOB_FIELDS, "cancel_requested", "dataset_id",
                  "dataset_content_hash", "split", "backend", "model", "seed", "max_steps", "steps_completed",
                  "final_loss", "tokens_per_s", "mfu_estimate", "duration_seconds", "created_by", "auto_evaluate",
                  "source", "algorithm", "init_run"]

    def get_url(self, obj) -> str:
        return reverse("run-detail", kwargs={"run_id": obj.pk})

    def get_source(self, obj) -> Literal["server", "imported"]:
        return "imported" if obj.imported else "server"


class TrainingRunDetailSerializer(TrainingRunSerializer):
    links = serializers.SerializerMethodField()

    class Meta(TrainingRunSerializer.Meta):
        fields = [*TrainingRunSerializer.Meta.fields, "config", "config_hash", "init_from", "final_metrics",
                  "code_version", "device", "timings", "first_step_at", "links"]

    def get_links(self, obj) -> dict:
        kwargs = {"run_id": obj.pk}
        names = ("status", "logs", "metrics", "artifacts", "cancel", "completions")
        return {name: reverse(f"run-{name}", kwargs=kwargs) for name in names} | {
            "dataset": reverse("dataset-detail", kwargs={"dataset_id": obj.dataset_version_id})}


class RunStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=JobStatus.choices)
    attempt = serializers.IntegerField()
    max_attempts = serializers.IntegerField()
    steps_completed = serializers.IntegerField()
    max_steps = serializers.IntegerField()
    heartbeat_at = serializers.DateTimeField(allow_null=True)
    cancel_requested = serializers.BooleanField()
    error_code = serializers.CharField(allow_blank=True)
    error = serializers.CharField(allow_blank=True)
    final_loss = serializers.FloatField(allow_null=True)


class RunListQuerySerializer(QuerySerializer):
    status = serializers.ChoiceField(choices=JobStatus.choices, required=False)
    dataset = serializers.CharField(max_length=200, required=False)
    backend = serializers.ChoiceField(choices=BACKENDS, required=False)
    model = serializers.CharField(max_length=64, required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)


class LogQuerySerializer(QuerySerializer):
    since_seq = serializers.IntegerField(min_value=0, required=False, default=0)
    since_step = serializers.IntegerField(min_value=0, required=False, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=5000, required=False, default=500)


class MetricsQuerySerializer(QuerySerializer):
    max_points = serializers.IntegerField(min_value=2, max_value=100_000, required=False)


class CompletionQuerySerializer(QuerySerializer):
    step = serializers.IntegerField(min_value=1, required=False, help_text="only this step's completions")
    min_reward = serializers.FloatField(required=False, help_text="reward at least this")
    max_reward = serializers.FloatField(required=False, help_text="reward at most this")
    failed = serializers.ChoiceField(choices=JUDGE_NAMES, required=False, help_text="only where this judge scored 0")

    def validate(self, attrs):
        low, high = attrs.get("min_reward"), attrs.get("max_reward")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError({"min_reward": [f"min_reward {low} is above max_reward {high}."]})
        return attrs


class CompletionSerializer(serializers.Serializer):
    """One sampled completion of a GRPO step, with the judges' verdicts (1 pass, 0 fail)."""

    step = serializers.IntegerField()
    index = serializers.IntegerField(help_text="its place among the step's recorded samples")
    prompt = serializers.CharField()
    expected_answer = serializers.CharField()
    completion = serializers.CharField()
    stopped = serializers.BooleanField(help_text="false: cut at max_new_tokens")
    reward = serializers.FloatField()
    advantage = serializers.FloatField()
    judges = serializers.DictField(child=serializers.FloatField())


class RunArtifactSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = RunArtifact
        fields = ["name", "kind", "size_bytes", "sha256", "created_at", "download_url"]

    def get_download_url(self, obj) -> str:
        return reverse("run-artifact-download", kwargs={"run_id": obj.run_id, "name": obj.name})
