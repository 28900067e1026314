from rest_framework import serializers


class JobSerializerMixin(serializers.Serializer):
    """The job columns every background job shows (apps.core.models.Job)."""

    progress = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()

    JOB_FIELDS = ["status", "attempt", "max_attempts", "progress", "error", "worker", "heartbeat_at", "queued_at",
                  "started_at", "finished_at"]

    def get_progress(self, obj) -> dict:
        return {"done": obj.progress_done, "total": obj.progress_total}

    def get_error(self, obj) -> dict | None:
        return {"code": obj.error_code, "message": obj.error} if obj.error_code else None
