"""Read-through cache for hot API reads, kept exact by generations.

Each namespace has a *generation*, a random token in the shared cache. An entry is stored with the
generation it was built under, and a read fetches the current generation and the entry in one
round trip: if they differ, the entry is stale and is rebuilt. A write calls `namespace_changed`,
which replaces the token both at once (so the writer's own transaction reads its writes) and again
after commit (so a reader that rebuilt from the pre-commit rows in between cannot leave a stale
entry that passes for current).

Entries live `READ_CACHE_SECONDS` unless a caller passes its own `seconds` (API keys use
`API_KEY_CACHE_SECONDS`); 0 turns caching off, which the settings do by default without a shared cache
(`CACHE_URL`): a per-process cache would never hear other processes' writes.

When the cache itself fails (Redis down), reads fall back to the database (counted in /metrics as
`tunixrt_cache_fallbacks_total`) and a generation that could not be replaced is remembered and replaced
first thing once the cache answers again, so a write made during the outage cannot leave stale pages
behind (unless this process stops before then; entries then expire after their lifetime).
"""

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from apps.core.metrics import CACHE_FALLBACKS

T = TypeVar("T")
logger = logging.getLogger(__name__)
CACHE_ERRORS = (redis.RedisError, ConnectionError, OSError)
_missed_changes: set[str] = set()  # namespaces whose generation could not be replaced
_last_warning = [0.0]


def _failed(operation: str, exc: Exception) -> None:
    CACHE_FALLBACKS.labels(operation).inc()
    if time.monotonic() - _last_warning[0] > 60:  # one log line a minute, not one per request
        _last_warning[0] = time.monotonic()
        logger.warning("cache unavailable (%s: %s); reading from the database", operation, exc)


def _lifetime(seconds: int | None) -> int:
    return settings.READ_CACHE_SECONDS if seconds is None else seconds


def _generation_key(namespace: str) -> str:
    return f"readcache:{namespace}:generation"


def _new_generation(namespace: str) -> str:
    key = _generation_key(namespace)
    # add() is a no-op if another process set one meanwhile; read back whichever won.
    cache.add(key, secrets.token_hex(8), timeout=None)
    return cache.get(key)


def _replace_generation(namespace: str) -> None:
    try:
        cache.set(_generation_key(namespace), secrets.token_hex(8), timeout=None)
    except CACHE_ERRORS as exc:
        _missed_changes.add(namespace)
        _failed("invalidate", exc)


def _replay_missed_changes() -> None:
    for namespace in list(_missed_changes):
        cache.set(_generation_key(namespace), secrets.token_hex(8), timeout=None)
        _missed_changes.discard(namespace)


def namespace_changed(namespace: str, *, seconds: int | None = None) -> None:
    """Call from every service that writes what the namespace's cached reads show."""
    if _lifetime(seconds) <= 0:
        return
    _replace_generation(namespace)
    transaction.on_commit(lambda: _replace_generation(namespace))


def cached(namespace: str, key: str, build: Callable[[], T], *, seconds: int | None = None) -> T:
    """`build()`'s value, computed at most once per generation of the namespace (and key). None is
    never stored, so lookups of things that do not exist (made-up ids) cannot fill the cache."""
    lifetime = _lifetime(seconds)
    if lifetime <= 0:
        return build()
    # Hashed: callers pass query strings, which may be long or hold characters some backends refuse.
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    entry_key, generation_key = f"readcache:{namespace}:{digest}", _generation_key(namespace)
    try:
        if _missed_changes:
            _replay_missed_changes()
        found = cache.get_many([generation_key, entry_key])
        generation = found.get(generation_key) or _new_generation(namespace)
    except CACHE_ERRORS as exc:
        _failed("read", exc)
        return build()
    entry = found.get(entry_key)
    if entry is not None and entry[0] == generation:
        return entry[1]
    value = build()
    if value is not None:
        try:
            cache.set(entry_key, (generation, value), lifetime)
        except CACHE_ERRORS as exc:
            _failed("write", exc)
    return value
