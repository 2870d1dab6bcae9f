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


@pytest.fixture
def private_networks_allowed(settings):
    """Loopback servers (webhook receivers, image hosts) are private addresses: allow them,
    as development does."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True


@pytest.fixture(autouse=True)
def _fresh_cache():
    from django.core.cache import cache

    from generation import blocklist

    cache.clear()
    # The blocklist is cached per process; each test's database starts without terms.
    blocklist.clear_local_cache()


@pytest.fixture(autouse=True)
def _reproducible_random_seeds(monkeypatch):
    # A job without a seed gets a random one; image moderation flags a rare random picture
    # (docs/architecture.md, Moderation), so in-process tests draw seeds from a fixed
    # sequence: the same pictures on every run, a failure that reproduces.
    import random
    import types

    from generation import submission

    monkeypatch.setattr(
        submission, "secrets", types.SimpleNamespace(randbelow=random.Random(2026).randrange)
    )
