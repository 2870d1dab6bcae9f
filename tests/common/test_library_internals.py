"""One test per library internal the fast paths lean on (common/fastpaths/__init__.py).

When an upgrade changes one of them, the failure is here, by name, rather than somewhere
subtler: a fast path that silently stops being fast, or a row read with a wrong value.
"""

import inspect
import time

import pytest
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.db import connection
from django.utils.functional import cached_property
from django_ratelimit import ALL
from django_ratelimit.core import get_usage
from kombu.transport import redis as kombu_redis
from rest_framework import serializers

from common.fastpaths import drf, orm, ratelimit
from common.fastpaths.kombu_redis import Channel
from common.fastpaths.redis_cache import SharedClientRedisCache
from generation.models import Job
from tests.generation.factories import JobFactory


def test_drf_builds_a_serializers_fields_in_a_cached_property():
    assert isinstance(serializers.Serializer.__dict__["fields"], cached_property)

    class Body(drf.RequestSerializer):
        prompt = serializers.CharField()

    first, second = Body(data={"prompt": "a"}), Body(data={"prompt": "b"})
    assert list(first.fields) == ["prompt"]
    assert first.fields is second.fields
    assert first.is_valid()
    assert second.is_valid()
    assert (first.validated_data, second.validated_data) == ({"prompt": "a"}, {"prompt": "b"})


def test_drf_to_representation_keeps_no_state_between_instances():
    class Out(serializers.Serializer):
        name = serializers.CharField()

    class Thing:
        def __init__(self, name):
            self.name = name

    assert drf.render(Out, Thing("a")) == {"name": "a"}
    assert drf.render(Out, Thing("b")) == {"name": "b"}


def test_django_ratelimit_windows_and_keys_are_what_its_get_usage_counts(rf, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    request = rf.get("/")
    usage = get_usage(
        request, group="probe", key=lambda group, request: "v", rate="5/m", increment=True
    )
    assert usage["count"] == 1
    assert usage["time_left"] == ratelimit.window_end("v", 60) - int(time.time())
    key = ratelimit.cache_key("probe", ratelimit.window_end("v", 60), 5, 60, "v")
    from django.core.cache import cache

    assert cache.get(key) == 1
    assert ratelimit.EXPIRATION_FUDGE >= 0
    assert ALL is not None


def test_djangos_redis_cache_client_exposes_its_pools_and_client_class():
    for name in ("_get_connection_pool_index", "_get_connection_pool", "get_client"):
        assert callable(getattr(RedisCacheClient, name, None)), name
    cache = SharedClientRedisCache("redis://127.0.0.1:1/0", {})
    assert isinstance(cache, RedisCache)
    client = cache._cache.get_client(write=True)
    assert isinstance(client, cache._cache._client)
    assert client.connection_pool is cache._cache._get_connection_pool(True)
    assert cache._cache.get_client(write=True) is client


def test_kombus_redis_channel_creates_clients_and_lends_them_through_conn_or_acquire():
    assert callable(kombu_redis.Channel._create_client)
    parameters = inspect.signature(kombu_redis.Channel.conn_or_acquire).parameters
    assert list(parameters) == ["self", "client"]
    assert issubclass(Channel, kombu_redis.Channel)


def test_djangos_field_preparation_and_row_conversion_are_what_the_orm_uses():
    for name in ("pre_save", "get_db_prep_save", "get_col"):
        assert callable(getattr(Job._meta.pk, name)), name
    assert callable(connection.ops.get_db_converters)
    assert list(inspect.signature(Job.from_db).parameters) == ["db", "field_names", "values"]


@pytest.mark.django_db
def test_a_row_read_by_the_fast_path_equals_the_orms():
    job = JobFactory()
    reader = orm.RowReader(Job)
    with connection.cursor() as cursor:
        cursor.execute(
            reader.select("id = %s"), [Job._meta.pk.get_db_prep_value(job.pk, connection)]
        )
        fast = reader.instance(cursor.fetchone())
    slow = Job.objects.get(pk=job.pk)
    for field in Job._meta.concrete_fields:
        assert getattr(fast, field.attname) == getattr(slow, field.attname), field.name
    assert fast._state.adding is False
