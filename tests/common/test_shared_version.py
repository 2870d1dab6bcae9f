"""SharedVersion (common/cache.py): the version token of the per-process caches."""

import pytest
from django.core.cache import caches

from common.cache import SharedVersion
from common.fastpaths.redis_cache import redis_client

VERSION = SharedVersion("tests:version")


def test_a_version_lost_by_the_shared_cache_comes_back_as_a_new_token():
    before = VERSION.current()
    caches["default"].delete(VERSION.key)  # a Redis restart or an eviction
    assert VERSION.current() not in (before, None)


def test_a_renewed_version_differs_and_stays():
    before = VERSION.current()
    VERSION.renew()
    assert VERSION.current() != before
    assert VERSION.current() == VERSION.current()


@pytest.mark.redis
def test_in_redis_the_token_is_a_plain_string_another_round_trip_can_read():
    cache = caches["default"]
    token = VERSION.current()
    assert redis_client(cache).get(cache.make_and_validate_key(VERSION.key)).decode() == token
