from django.urls import reverse
from rest_framework import serializers


class SweepTrialSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    params = serializers.JSONField()
    state = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    error = serializers.CharField()
    run_id = serializers.UUIDField()
    run_status = serializers.CharField(source="run.status")


class SweepSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.SerializerMethodField()
    name = serializers.CharField()
    status = serializers.CharField()
    dataset_id = serializers.CharField(source="dataset_version_id")
    base_config = serializers.JSONField()
    search_space = serializers.JSONField()
    metric = serializers.CharField()
    direction = serializers.CharField()
    n_trials = serializers.IntegerField()
    max_concurrent = serializers.IntegerField()
    seed = serializers.IntegerField()
    eval_set = serializers.CharField(source="eval_set_id", allow_null=True)
    eval_limit = serializers.IntegerField(allow_null=True)
    best_trial = serializers.SerializerMethodField()
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_url(self, obj) -> str:
        return reverse("sweep-detail", kwargs={"sweep_id": obj.pk})

    def get_best_trial(self, obj) -> dict | None:
        return SweepTrialSerializer(obj.best_trial).data if obj.best_trial_id else None


class SweepDetailSerializer(SweepSerializer):
    trials = serializers.SerializerMethodField()

    def get_trials(self, obj) -> list:
        return SweepTrialSerializer(obj.trials.select_related("run").order_by("number"), many=True).data
