from django.urls import reverse
from rest_framework import serializers

from apps.core.api.serializers import JobSerializerMixin
from apps.core.validation import QuerySerializer
from apps.datasets.models import DatasetBuild, DatasetVersion, Split
from apps.datasets.spec import MAX_LIMIT
from apps.traces.models import TraceStatus


class DatasetVersionSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    parent_dataset_id = serializers.CharField(source="parent_id", read_only=True, allow_null=True)
    splits = serializers.DictField(source="split_counts", read_only=True)
    export_url = serializers.SerializerMethodField()

    class Meta:
        model = DatasetVersion
        fields = ["id", "name", "version", "created_at", "created_by", "content_hash", "selection_strategy",
                  "trace_count", "splits", "stats", "session_id", "parent_dataset_id", "export_url"]

    def get_export_url(self, obj) -> str:
        return reverse("dataset-export", kwargs={"dataset_id": obj.pk})


class DatasetBuildSerializer(JobSerializerMixin, serializers.ModelSerializer):
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    status_url = serializers.SerializerMethodField()
    dataset_url = serializers.SerializerMethodField()

    class Meta:
        model = DatasetBuild
        fields = ["id", "dataset_id", *JobSerializerMixin.JOB_FIELDS, "requested_by", "created_version",
                  "dataset_url", "status_url", "request"]

    def get_status_url(self, obj) -> str:
        return reverse("dataset-build-status", kwargs={"build_id": obj.pk})

    def get_dataset_url(self, obj) -> str | None:
        if obj.dataset_version_id is None:
            return None
        return reverse("dataset-detail", kwargs={"dataset_id": obj.dataset_version_id})


class DatasetVersionDetailSerializer(DatasetVersionSerializer):
    class Meta(DatasetVersionSerializer.Meta):
        fields = [*DatasetVersionSerializer.Meta.fields, "manifest"]


class ExportQuerySerializer(QuerySerializer):
    format = serializers.CharField(required=False, default="trace")
    split = serializers.ChoiceField(choices=Split.values, required=False)


class UngarExportQuerySerializer(QuerySerializer):
    format = serializers.CharField(required=False, default="trace")
    status = serializers.ChoiceField(choices=TraceStatus.values, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, required=False)


class IngestQuerySerializer(QuerySerializer):
    mode = serializers.CharField(required=False, default="all_or_nothing")
