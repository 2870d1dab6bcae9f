import os

import pytest

USING_POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
USING_REDIS = bool(os.environ.get("REDIS_URL"))


def pytest_collection_modifyitems(config, items):
    # Without DATABASE_URL / REDIS_URL these tests have nothing real to run against and are
    # skipped; with them set (as in CI) they run, and fail loudly if the server is broken.
    for item in items:
        if "postgres" in item.keywords and not USING_POSTGRES:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL"))
        if "redis" in item.keywords and not USING_REDIS:
            item.add_marker(pytest.mark.skip(reason="needs Redis: set REDIS_URL"))


@pytest.fixture(autouse=True)
def _fresh_cache():
    from django.core.cache import cache

    from generation import blocklist

    cache.clear()
    # The blocklist is cached per process; each test's database starts without terms.
    blocklist.clear_local_cache()
