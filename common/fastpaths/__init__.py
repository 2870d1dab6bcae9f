"""The measured fast paths, gathered in one place because each leans on a library's internals.

Each took a hot request's CPU down by a figure recorded in bench/README.md. Each relies on
something its library does not promise to keep:

- `orm`: a row inserted or read with statements made once per model, its values prepared
  and converted by the fields exactly as the ORM's own insert and read do (Django's
  `Field.pre_save`/`get_db_prep_save`, the ops' and columns' `get_db_converters`,
  `Model.from_db`, `Model._state`).
- `drf`: a request serializer's fields built once per class (DRF's `Serializer.fields` is a
  cached_property whose `func` builds them).
- `ratelimit`: django-ratelimit's fixed windows, computed here so that a Lua script can
  count several in one round trip (`django_ratelimit.core._get_window`, `_make_cache_key`,
  `EXPIRATION_FUDGE`).
- `redis_cache`: Django's Redis cache with one client per connection pool, and the raw
  client behind it (`RedisCacheClient._get_connection_pool_index`, `_get_connection_pool`,
  `_client`, `RedisCache._cache`, `_class`).
- `kombu_redis`: kombu's Redis transport publishing through one client per channel
  (`kombu.transport.redis.Channel._create_client`, `conn_or_acquire`).

tests/common/test_library_internals.py has a test for each internal named here, so an
upgrade that changes one fails there, by name, before anything subtler breaks.
"""
