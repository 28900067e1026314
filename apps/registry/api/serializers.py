from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.validation import QuerySerializer
from apps.registry.evidence import version_evidence
from apps.registry.models import AliasEvent, ModelAlias, ModelVersion, RegisteredModel


class RegisteredModelSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    aliases = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = RegisteredModel
        fields = ["id", "name", "description", "url", "aliases", "created_by", "created_at"]

    def get_aliases(self, obj) -> dict:
        return {alias.name: alias.version.label for alias in
                ModelAlias.objects.filter(model=obj).select_related("version")}

    def get_url(self, obj) -> str:
        return reverse("model-detail", kwargs={"model_ref": obj.pk})


class ModelVersionSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name", read_only=True)
    source_run_id = serializers.UUIDField(read_only=True)
    dataset_id = serializers.CharField(source="dataset_version_id", read_only=True)
    metrics_evaluation_id = serializers.UUIDField(read_only=True, allow_null=True)
    answer_accuracy = serializers.SerializerMethodField()
    urls = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = ["id", "model", "label", "number", "source_run_id", "checkpoint_step", "backend", "model_preset",
                  "config_hash", "dataset_id", "dataset_content_hash", "code_version", "base_weights_sha256",
                  "tokenizer_sha256", "base_model_dir", "base_weights_included", "size_bytes", "answer_accuracy",
                  "metrics_evaluation_id", "created_at", "urls"]

    def get_answer_accuracy(self, obj) -> float | None:
        return (obj.metrics or {}).get("answer_accuracy")

    def get_urls(self, obj) -> dict:
        kwargs = {"version_id": obj.pk}
        return {"self": reverse("model-version-detail", kwargs=kwargs),
                "download": reverse("model-version-download", kwargs=kwargs),
                "lineage": reverse("model-version-lineage", kwargs=kwargs),
                "evaluate": reverse("model-version-evaluate", kwargs=kwargs),
                "run": reverse("run-detail", kwargs={"run_id": obj.source_run_id})}


class EvidenceSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["measured", "pending", "none"],
                                     help_text="measured: metrics from a server evaluation of this checkpoint on a "
                                               "whole eval set; pending: one is queued or running; none: evaluate it")
    evaluation_id = serializers.UUIDField(allow_null=True)


class ModelVersionDetailSerializer(ModelVersionSerializer):
    files = serializers.SerializerMethodField()
    evidence = serializers.SerializerMethodField()

    class Meta(ModelVersionSerializer.Meta):
        fields = [*ModelVersionSerializer.Meta.fields, "config", "metrics", "evidence", "files"]

    @extend_schema_field(EvidenceSerializer)
    def get_evidence(self, obj) -> dict:
        return version_evidence(obj)

    def get_files(self, obj) -> list:
        return [{"path": f.path, "sha256": f.blob_id, "size_bytes": f.blob.size_bytes}
                for f in obj.files.select_related("blob").order_by("path")]


class AliasEventSerializer(serializers.ModelSerializer):
    from_version = serializers.CharField(source="from_version.label", allow_null=True, default=None)
    to_version = serializers.CharField(source="to_version.label")
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    regression_check = serializers.SerializerMethodField()

    class Meta:
        model = AliasEvent
        fields = ["id", "alias", "outcome", "from_version", "to_version", "actor", "actor_label", "forced", "reason",
                  "regression_check", "at"]

    def get_regression_check(self, obj) -> dict | None:
        check = obj.regression_check
        if check is None:
            return None
        return {"id": check.pk, "result": check.result, "metric": check.metric, "baseline_value":
                check.baseline_value, "current_value": check.current_value, "delta": check.delta,
                "decision": check.decision, "paired_ci": None if check.paired_ci_low is None else
                [check.paired_ci_low, check.paired_ci_high], "paired_items": check.paired_items,
                "minimum_detectable_effect": check.minimum_detectable_effect}


class LineageQuerySerializer(QuerySerializer):
    offset = serializers.IntegerField(min_value=0, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=500, default=50)
