import hmac

from apps.core.models import ApiKey
from apps.core.services import KEY_PREFIX, api_key_secret_hash


def api_key_from_token(token: str) -> ApiKey | None:
    """The usable key a `trt_<id>_<secret>` token names, or None; constant-time secret compare."""
    if not token.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = token[len(KEY_PREFIX):].partition("_")
    if not sep or not key_id or not secret:
        return None
    key = ApiKey.objects.select_related("user").filter(key_id=key_id).first()
    if key is None or not hmac.compare_digest(key.secret_hash, api_key_secret_hash(secret)):
        return None
    if not key.is_usable() or not key.user.is_active:
        return None
    return key
