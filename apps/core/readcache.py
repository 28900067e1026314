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
"""

import hashlib
import secrets
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

T = TypeVar("T")


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
    cache.set(_generation_key(namespace), secrets.token_hex(8), timeout=None)


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
    found = cache.get_many([generation_key, entry_key])
    generation = found.get(generation_key) or _new_generation(namespace)
    entry = found.get(entry_key)
    if entry is not None and entry[0] == generation:
        return entry[1]
    value = build()
    if value is not None:
        cache.set(entry_key, (generation, value), lifetime)
    return value
