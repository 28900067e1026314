"""Read-through cache for hot API reads, kept exact by generations.

Every cached value lives under its namespace's current *generation*, a random token in the shared
cache. A write calls `namespace_changed`, which replaces the token: readers then miss and rebuild, and
the old entries are never read again (they expire on their own). The token is replaced both at once
(so the writer's own transaction reads its writes) and again after commit (so a reader that rebuilt
from the pre-commit rows in between cannot leave a stale page under the new token).

Caching is on only when `READ_CACHE_SECONDS` > 0, which the settings allow by default only with a
shared cache (`CACHE_URL`): a per-process cache would never hear other processes' writes.
"""

import hashlib
import secrets
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

T = TypeVar("T")


def enabled() -> bool:
    return settings.READ_CACHE_SECONDS > 0


def _generation_key(namespace: str) -> str:
    return f"readcache:{namespace}:generation"


def _generation(namespace: str) -> str:
    key = _generation_key(namespace)
    token = cache.get(key)
    if token is None:
        # add() is a no-op if another process set one meanwhile; read back whichever won.
        cache.add(key, secrets.token_hex(8), timeout=None)
        token = cache.get(key)
    return token


def _replace_generation(namespace: str) -> None:
    cache.set(_generation_key(namespace), secrets.token_hex(8), timeout=None)


def namespace_changed(namespace: str) -> None:
    """Call from every service that writes what the namespace's cached reads show."""
    if not enabled():
        return
    _replace_generation(namespace)
    transaction.on_commit(lambda: _replace_generation(namespace))


def cached(namespace: str, key: str, build: Callable[[], T]) -> T:
    """`build()`'s value, computed at most once per generation of the namespace (and key)."""
    if not enabled():
        return build()
    # Hashed: callers pass query strings, which may be long or hold characters some backends refuse.
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    full_key = f"readcache:{namespace}:{_generation(namespace)}:{digest}"
    value = cache.get(full_key)
    if value is None:
        value = build()
        cache.set(full_key, value, settings.READ_CACHE_SECONDS)
    return value
