"""API key writes: creation (secret returned once), revocation, last-used bookkeeping."""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from apps.core.models import ApiKey
from apps.core.readcache import namespace_changed

KEY_PREFIX = "trt_"
# last_used_at is advisory; writing it at most once a minute keeps reads from becoming writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_key_secret_hash(secret: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), secret.encode(), hashlib.sha256).hexdigest()


def api_key_create(*, user, name: str, scope: str = ApiKey.SCOPE_READ, expires_at=None) -> tuple[ApiKey, str]:
    """Create a key and return it with its full token; the token cannot be recovered later."""
    if scope not in (ApiKey.SCOPE_READ, ApiKey.SCOPE_WRITE):
        raise ValueError(f"scope must be 'read' or 'write', not {scope!r}")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        key_id=key_id,
        secret_hash=api_key_secret_hash(secret),
        name=name,
        user=user,
        scope=scope,
        expires_at=expires_at,
    )
    return key, f"{KEY_PREFIX}{key_id}_{secret}"


def api_key_assign_secret(*, key: ApiKey) -> str:
    """Give an unsaved key (built by the admin form) an id and secret; returns the token."""
    key.key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key.secret_hash = api_key_secret_hash(secret)
    return f"{KEY_PREFIX}{key.key_id}_{secret}"


def api_key_cache_namespace(key_id: str) -> str:
    return f"apikey:{key_id}"


def api_key_cache_forget(*, key_ids) -> None:
    """Invalidate cached keys (see selectors._api_key) so a revocation or user change applies at once,
    even to a request that loaded the key just before the change."""
    for key_id in key_ids:
        namespace_changed(api_key_cache_namespace(key_id), seconds=settings.API_KEY_CACHE_SECONDS)


def api_key_revoke(*, key: ApiKey) -> None:
    ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_key_cache_forget(key_ids=[key.key_id])


def api_key_touch(*, key: ApiKey) -> None:
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
        # The cached copy still holds the old time and would make every request write again.
        api_key_cache_forget(key_ids=[key.key_id])
