"""Django's Redis cache backend with one Redis client per connection pool, and that client.

Django's own client builds a new `redis.Redis` for every cache call, and redis-py's
constructor sets up some 170 response callbacks each time: about a tenth of a millisecond
per call, several calls per API request. A client is safe to share (it borrows a
connection from its pool for each command), so each pool keeps one.
"""

from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class _SharedClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(
                connection_pool=self._get_connection_pool(write)
            )
        return client


class SharedClientRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _SharedClientRedisCacheClient


def redis_client(cache: BaseCache):
    """The Redis client behind `cache`, for what Django's cache API lacks (pipelines, a plain
    GET/SET of a token); None when the cache is not Redis."""
    return cache._cache.get_client(write=True) if isinstance(cache, RedisCache) else None
