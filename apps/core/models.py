from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiKey(models.Model):
    """A bearer key `trt_<key_id>_<secret>`; only an HMAC of the secret is stored."""

    SCOPE_READ = "read"
    SCOPE_WRITE = "write"
    SCOPES = [(SCOPE_READ, "read"), (SCOPE_WRITE, "read + write")]

    key_id = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    name = models.CharField(max_length=100)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    scope = models.CharField(max_length=8, choices=SCOPES, default=SCOPE_READ)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        constraints = [
            models.CheckConstraint(condition=models.Q(scope__in=["read", "write"]), name="apikey_scope_valid"),
        ]

    def __str__(self):
        return f"{self.name} (trt_{self.key_id}_…, {self.scope})"

    @property
    def prefix(self) -> str:
        return f"trt_{self.key_id}_"

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now

    def allows_write(self) -> bool:
        return self.scope == self.SCOPE_WRITE


class JobStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    COMPLETED = "completed", "completed"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"
    # Transitional: the reaper found no heartbeat; it moves on to queued (retry) or failed at once.
    LOST = "lost", "lost"


FINAL_JOB_STATUSES = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)
ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.LOST)


class Job(models.Model):
    """The database row that is the truth about one piece of background work (SPEC §3).

    Dataset builds, training runs and evaluations inherit these columns; `apps.core.jobs` claims,
    beats, finishes and reaps them with conditional updates. `attempt` counts claims and fences
    writes: a worker writes only while the row is `running` at the attempt it claimed, so a worker
    that was presumed dead and comes back cannot overwrite its successor.
    """

    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    attempt = models.PositiveIntegerField(default=0, help_text="claims so far")
    max_attempts = models.PositiveIntegerField(default=3)
    cancel_requested = models.BooleanField(default=False)
    worker = models.CharField(max_length=200, blank=True, default="", help_text="host:pid of the claiming worker")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    progress_done = models.BigIntegerField(default=0)
    progress_total = models.BigIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True, default="")
    error = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    queued_at = models.DateTimeField(default=timezone.now)
    dispatched_at = models.DateTimeField(null=True, blank=True,
                                         help_text="when its task was last sent; empty: not sent (the reaper sends it)")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="%(app_label)s_%(class)s_reap")]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=JobStatus.values),
                                   name="%(app_label)s_%(class)s_status_valid"),
        ]

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_JOB_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or timezone.now()
        return (end - self.started_at).total_seconds()
