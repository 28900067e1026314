"""Django's Redis cache backend, minus a per-operation cost.

The stock client builds a new `redis.Redis` for every cache operation, and that constructor
(response-callback tables of ~150 entries) cost more CPU than the network round trip: about
0.5 ms per get, three gets per cached API read. A `redis.Redis` is thread-safe over its connection
pool, so one per pool is enough. Selected by settings when CACHE_URL is set.
"""

from django.core.cache.backends import redis as django_redis


class _OneClientPerPool(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _OneClientPerPool
