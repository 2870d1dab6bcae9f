"""Django's Redis cache backend, with one Redis client per connection pool; the shared
version token of the per-process caches (SharedVersion).

Django's own client builds a new `redis.Redis` for every cache call, and redis-py's
constructor sets up some 170 response callbacks each time: about a tenth of a millisecond
per call, several calls per API request. A client is safe to share (it borrows a
connection from its pool for each command), so each pool keeps one.
"""

import uuid

from django.core.cache import caches
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


class SharedVersion:
    """The version of something each process keeps a copy of, as a token in the shared cache.

    A change writes a new random token (`renew`); a process compares the token its copy was
    made under with `current()` and reloads when they differ. Random, not a counter: a Redis
    restart or an eviction that loses the key yields a fresh token, so a reload, where an
    INCR counter would start again from 1 and could bring back the very value a stale copy
    was made under.

    In Redis the token is a plain string, so a caller may read `key` in a round trip of its
    own (accounts.api_key_cache does, in the rate limits' pipeline). Cache errors propagate:
    the caller decides what an unreachable cache means for its copy.
    """

    def __init__(self, key: str):
        self.key = key

    def current(self) -> str:
        """The current token; a fresh one (stored) when the cache has none."""
        cache = caches["default"]
        client = redis_client(cache)
        if client is None:
            token = cache.get(self.key)
            if token is None:
                fresh = uuid.uuid4().hex
                token = fresh if cache.add(self.key, fresh, timeout=None) else cache.get(self.key)
            return token
        key = cache.make_and_validate_key(self.key)
        token = client.get(key)
        if token is None:
            fresh = uuid.uuid4().hex
            # Two processes may find the key missing at once: both keep the one stored first.
            token = fresh if client.set(key, fresh, nx=True) else client.get(key)
        return token.decode() if isinstance(token, bytes) else token

    def renew(self) -> None:
        """Store a new token: every copy made under another one is out of date."""
        cache = caches["default"]
        client = redis_client(cache)
        token = uuid.uuid4().hex
        if client is None:
            cache.set(self.key, token, timeout=None)
        else:
            client.set(cache.make_and_validate_key(self.key), token)
