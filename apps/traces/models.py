import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class TraceStatus(models.TextChoices):
    CAPTURED = "captured", "captured"
    APPROVED = "approved", "approved"
    REJECTED = "rejected", "rejected"
    NEEDS_REVIEW = "needs_review", "needs review"


# The curation state machine (SPEC §2.2): curators may change their mind, but nothing returns to
# "captured", which means "never looked at".
ALLOWED_TRANSITIONS = {
    TraceStatus.CAPTURED: {TraceStatus.APPROVED, TraceStatus.REJECTED, TraceStatus.NEEDS_REVIEW},
    TraceStatus.NEEDS_REVIEW: {TraceStatus.APPROVED, TraceStatus.REJECTED},
    TraceStatus.APPROVED: {TraceStatus.REJECTED, TraceStatus.NEEDS_REVIEW},
    TraceStatus.REJECTED: {TraceStatus.APPROVED, TraceStatus.NEEDS_REVIEW},
}


class Trace(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No single-column indexes on created_at or status: the composite indexes below lead with them
    # and serve the same lookups, and every extra index is paid on each of 1,000 rows per batch.
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    trace_version = models.CharField(max_length=64, default="1.0")
    prompt = models.TextField()
    final_answer = models.TextField()
    steps = models.JSONField()
    meta = models.JSONField(null=True, blank=True)
    # Real columns for what curators and dataset builds filter on; copied from meta on write.
    source = models.CharField(max_length=200, blank=True, default="", db_index=True)
    category = models.CharField(max_length=200, blank=True, default="", db_index=True)
    tags = models.JSONField(default=list, blank=True)
    content_hash = models.CharField(max_length=64, unique=True, editable=False)
    status = models.CharField(max_length=16, choices=TraceStatus.choices, default=TraceStatus.CAPTURED)
    step_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="traces"
    )
    # Scoring is recorded work, not a fire-and-forget send: a trace whose structural score is not stored
    # yet says when the reaper should send its scoring task (again); NULL once scored.
    score_due_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="trace_status_created"),
            # Serves the default ordering of every list (API and admin) without a sort.
            models.Index(fields=["-created_at", "-id"], name="trace_created_id"),
            # Only unscored traces are in it, so the reaper's look stays cheap whatever the table's size.
            models.Index(fields=["score_due_at"], name="trace_score_due",
                         condition=models.Q(score_due_at__isnull=False)),
        ]
        permissions = [("view_all_traces", "Can see traces created by anyone"),
                       ("review_trace", "Can approve, reject or tag traces")]

    def __str__(self):
        return f"{self.prompt[:60]} [{self.status}]"

    def as_trace_json(self) -> dict:
        """The SPEC §2.1 body this row stores."""
        return {
            "trace_version": self.trace_version,
            "prompt": self.prompt,
            "final_answer": self.final_answer,
            "steps": self.steps,
            "meta": self.meta,
        }


class CurationEvent(models.Model):
    """Audit row for every curation change; `snapshot` keeps a trace's content before an edit."""

    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="curation_events")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200, blank=True, default="")
    action = models.CharField(max_length=16)  # review | edit | tag
    from_status = models.CharField(max_length=16, choices=TraceStatus.choices)
    to_status = models.CharField(max_length=16, choices=TraceStatus.choices)
    reason = models.TextField(blank=True, default="")
    snapshot = models.JSONField(null=True, blank=True)
    tags_added = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.action}: {self.from_status} → {self.to_status}"


class TraceScore(models.Model):
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="scores")
    created_at = models.DateTimeField(default=timezone.now)
    scorer = models.CharField(max_length=64, default="structural")
    scorer_version = models.CharField(max_length=16)
    score = models.FloatField()
    details = models.JSONField(default=dict)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(score__gte=0, score__lte=100), name="tracescore_0_100"),
            # One score per trace and scorer version: scoring is an upsert, safe to deliver twice.
            models.UniqueConstraint(fields=["trace", "scorer", "scorer_version"], name="tracescore_one_per_version"),
        ]

    def __str__(self):
        return f"{self.scorer} {self.score:.1f}"
