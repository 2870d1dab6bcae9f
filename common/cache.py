"""The shared version token of the per-process caches (SharedVersion)."""

import uuid

from django.core.cache import caches

from common.fastpaths.redis_cache import redis_client


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
