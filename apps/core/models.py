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
