"""Rate limiting of writes made with API keys (DRF throttling; a 429 in the error shape with
Retry-After). Reads, sessions and anonymous requests are not throttled here. The counters live in
the shared cache; when it is down, requests are let through rather than refused."""

from rest_framework.throttling import SimpleRateThrottle

from apps.core.models import ApiKey
from apps.core.readcache import CACHE_ERRORS


class ApiKeyWriteThrottle(SimpleRateThrottle):
    scope = "key_writes"

    def get_cache_key(self, request, view):
        if request.method in ("GET", "HEAD", "OPTIONS") or not isinstance(request.auth, ApiKey):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.key_id}

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except CACHE_ERRORS:
            return True
