import hmac

from django.conf import settings

from apps.core import readcache
from apps.core.models import ApiKey
from apps.core.services import KEY_PREFIX, api_key_cache_namespace, api_key_secret_hash


def _load_api_key(key_id: str) -> ApiKey | None:
    return ApiKey.objects.select_related("user").filter(key_id=key_id).first()


def _load_api_key_with_permissions(key_id: str) -> ApiKey | None:
    key = _load_api_key(key_id)
    if key is not None:
        # Fills the auth backend's permission caches on the user, so they travel with the cached
        # key and permission checks cost no query on the next requests.
        key.user.get_all_permissions()
    return key


def _api_key(key_id: str) -> ApiKey | None:
    """The stored key, from the shared cache when one is configured."""
    if settings.API_KEY_CACHE_SECONDS <= 0:
        return _load_api_key(key_id)
    return readcache.cached(api_key_cache_namespace(key_id), "key", lambda: _load_api_key_with_permissions(key_id),
                            seconds=settings.API_KEY_CACHE_SECONDS)


def api_key_from_token(token: str) -> ApiKey | None:
    """The usable key a `trt_<id>_<secret>` token names, or None; constant-time secret compare."""
    if not token.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = token[len(KEY_PREFIX):].partition("_")
    if not sep or not key_id or not secret or len(key_id) > 16:
        return None
    key = _api_key(key_id)
    if key is None or not hmac.compare_digest(key.secret_hash, api_key_secret_hash(secret)):
        return None
    if not key.is_usable() or not key.user.is_active:
        return None
    return key
